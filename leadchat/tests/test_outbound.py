"""leadchat.outbound: a wall-clock deadline whatever the peer does, and the address policy.

Real sockets on loopback throughout: `DripServer` trickles its answer a byte at a time, which
requests' own timeouts (restarted on every recv) never cut.
"""

import os
import threading
import time

import pytest

from leadchat import outbound
from leadchat.testing import LoopbackServer, Reply
from leadchat.testing_outbound import DripServer, timed

BUDGET = 2.0
SLACK = 0.6


def post(url, http=None, **kwargs):
    kwargs.setdefault("total", BUDGET)
    kwargs.setdefault("connect", 1.0)
    kwargs.setdefault("keep_bytes", 4096)
    return outbound.post(url, body=b"{}", headers={}, http=http, **kwargs)


@pytest.mark.parametrize("drip", ["headers", "body", "silent"])
def test_a_dripping_peer_is_cut_at_the_wall_clock_deadline(drip):
    # headers: one byte of the status line every 0.4 s (each recv well inside any read timeout).
    with DripServer(interval=0.4, drip=drip) as server:
        error, elapsed = timed(post, f"{server.url}/hook")

    assert isinstance(error, outbound.OutboundError), error
    assert error.kind == "timeout"
    assert BUDGET * 0.9 <= elapsed < BUDGET + SLACK, f"took {elapsed:.2f}s"
    if drip != "silent":
        assert server.bytes_sent >= 2  # it really was trickling while we waited


def test_requests_alone_is_held_past_the_budget_by_the_same_peer():
    # The checker can fail: plain requests with the same budget as its timeouts outlasts it.
    import requests

    whole = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"  # 46 bytes, 0.1 s each
    with DripServer(interval=0.1, drip="headers", answer=whole) as server:
        result, elapsed = timed(
            requests.post,
            f"{server.url}/hook",
            data=b"{}",
            timeout=(1.0, BUDGET),
            stream=True,
        )
    assert isinstance(result, requests.Response) and result.status_code == 204
    assert elapsed > BUDGET + SLACK, f"requests returned after {elapsed:.2f}s"


def test_a_kept_alive_connection_is_under_the_next_requests_deadline():
    http = outbound.session()
    with DripServer(interval=0.4, drip="headers", answer_first=True) as server:
        first = post(f"{server.url}/hook", http=http)
        error, elapsed = timed(post, f"{server.url}/hook", http=http)

    assert first.status_code == 200
    assert server.connections == 1  # the second request reused the pooled connection
    assert isinstance(error, outbound.OutboundError) and error.kind == "timeout"
    assert elapsed < BUDGET + SLACK


def test_a_redirect_is_returned_without_reading_its_endless_body():
    with DripServer(interval=0.05, drip="body", status="302 Found") as server:
        response, elapsed = timed(post, f"{server.url}/hook")

    assert isinstance(response, outbound.Response), response
    assert response.status_code == 302
    assert response.headers["Location"] == "/next"
    assert elapsed < 1.0  # requests' Session.send would read the 3xx body to its end


def test_the_kept_answer_is_capped_and_marked_truncated():
    with LoopbackServer(lambda request: Reply(200, "x" * 100_000)) as server:
        response = post(f"{server.url}/hook", keep_bytes=4096)
        with pytest.raises(outbound.OutboundError) as refused:
            post(f"{server.url}/hook", keep_bytes=4096, too_large="error")

    assert len(response.body) == 4096 and response.truncated
    assert refused.value.kind == "too_large" and refused.value.permanent


# --- Address policy ---------------------------------------------------------------------------

ALWAYS_BLOCKED = [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.1.1",
    "fe80::1",
    "fd00:ec2::254",
    "100.100.100.200",
    "::ffff:169.254.169.254",
    "0.0.0.0",  # noqa: S104 - an address to refuse, nothing binds it
    "::",
    "224.0.0.1",
]
PRIVATE = ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "100.64.0.1", "fd12::1"]
PUBLIC = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]


@pytest.mark.parametrize("address", ALWAYS_BLOCKED)
def test_link_local_and_metadata_addresses_are_blocked_even_with_private_allowed(address):
    assert outbound.address_problem(address, allow_private=True) is not None
    assert outbound.address_problem(address, allow_private=False) is not None


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_loopback_addresses_need_the_setting(address):
    assert "OUTBOUND_ALLOW_PRIVATE_NETWORKS" in outbound.address_problem(
        address, allow_private=False
    )
    assert outbound.address_problem(address, allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert outbound.address_problem(address, allow_private=False) is None


def test_loopback_is_refused_before_any_byte_is_sent_when_private_is_not_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    with LoopbackServer() as server:
        with pytest.raises(outbound.OutboundError) as refused:
            post(f"{server.url}/hook")
        assert server.requests == []

    assert refused.value.kind == "blocked" and refused.value.permanent
    assert "127.0.0.1" in str(refused.value)


def test_a_name_is_judged_by_the_address_it_resolves_to(settings):
    # 'localhost' is a name, not an IP literal; /etc/hosts resolves it to 127.0.0.1 (real
    # resolution through getaddrinfo), and that address is what gets refused.
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    with LoopbackServer() as server:
        with pytest.raises(outbound.OutboundError) as refused:
            post(f"http://localhost:{server.port}/hook")
        assert server.requests == []
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        assert post(f"http://localhost:{server.port}/hook").status_code == 200

    assert refused.value.kind == "blocked"
    assert "localhost resolves to 127.0.0.1" in str(refused.value)


def test_metadata_address_is_refused_even_with_private_allowed_without_connecting(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    error, elapsed = timed(post, "http://169.254.169.254/latest/meta-data/")

    assert isinstance(error, outbound.OutboundError) and error.kind == "blocked"
    assert "metadata" in str(error)
    assert elapsed < 0.5  # refused before connecting, not a connect timeout


@pytest.mark.parametrize(
    ("url", "allow_private", "fragment"),
    [
        ("http://169.254.169.254/latest", True, "metadata"),
        ("http://[fd00:ec2::254]/", True, "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", True, "metadata"),
        ("http://[fe80::1]:5678/hook", True, "link-local"),
        ("http://localhost:5678/webhook/lead", False, "resolves to 127.0.0.1"),
        ("http://10.0.0.5:5678/webhook/lead", False, "private"),
        ("ftp://n8n.example.com/hook", True, "http:// or https://"),
    ],
)
def test_url_problem_names_why_an_admin_url_cannot_be_used(url, allow_private, fragment, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = allow_private
    problem = outbound.url_problem(url)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    "url",
    ["https://n8n.example.com/webhook/lead", "http://localhost:5678/webhook", "http://10.0.0.5/"],
)
def test_url_problem_accepts_allowed_and_unresolvable_urls(url, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    assert outbound.url_problem(url) is None


def test_connections_are_opened_only_through_post():
    # The guarded adapter outside post() would be a request with no deadline: it refuses.
    with LoopbackServer() as server, pytest.raises(RuntimeError):
        outbound.session().post(f"{server.url}/hook", timeout=1)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "not a url", "http://"])
def test_an_unusable_url_is_a_permanent_invalid_url_error(url):
    with pytest.raises(outbound.OutboundError) as refused:
        post(url)
    assert refused.value.kind == "invalid_url" and refused.value.permanent


def test_a_slow_dns_answer_is_cut_at_the_deadline_too(monkeypatch):
    # A mock only because no real resolver here can be made slow: the name's own DNS server is
    # part of what the peer controls, and getaddrinfo cannot be interrupted.
    import socket
    import time

    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.example":
            time.sleep(6)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    error, elapsed = timed(post, "http://slow-dns.example/hook")

    assert isinstance(error, outbound.OutboundError) and error.kind == "timeout"
    assert elapsed < BUDGET + SLACK


@pytest.mark.parametrize(("debug", "expected"), [("false", "False"), ("true", "True")])
def test_private_networks_are_refused_in_production_and_allowed_in_the_embedded_run(
    debug, expected
):
    """Production (DEBUG off) reaches no private address unless told to; `make run` (DEBUG on)
    reaches a local n8n as is. The real settings module, in a process of its own."""
    from leadchat.tests.test_health import _run_in_subprocess

    result = _run_in_subprocess(
        "import django; django.setup(); from django.conf import settings;"
        "print(settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS)",
        DEBUG=debug,
        SECRET_KEY="x" * 50,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def _expires_within(deadline, seconds: float) -> bool:
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if deadline.expired:
            return True
        time.sleep(0.01)
    return deadline.expired


def test_one_thread_expires_every_deadline_in_the_order_of_their_times():
    from leadchat.outbound import _Deadline

    late = _Deadline(5.0, 1.0)
    soon = _Deadline(0.2, 0.2)  # watched after a later one: it must still come first
    try:
        assert _expires_within(soon, 3.0)
        assert not late.expired
    finally:
        late.close()
        soon.close()
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("outbound-deadlines") == 1


def test_a_closed_deadline_is_never_expired():
    from leadchat.outbound import _Deadline

    deadline = _Deadline(0.1, 0.1)
    deadline.close()
    time.sleep(0.3)
    assert not deadline.expired


def test_a_forked_process_gets_a_watchdog_of_its_own():
    from leadchat.outbound import _Deadline

    _Deadline(0.01, 0.01).close()  # the parent's watchdog thread is running
    pid = os.fork()
    if pid == 0:  # the child: only the parent's thread that forked exists here
        try:
            code = 0 if _expires_within(_Deadline(0.1, 0.1), 3.0) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_loopback_server_drops_a_request_whose_body_never_came_whole():
    import socket

    with LoopbackServer() as server:
        host, port = server.url.split("//")[1].split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
            )
            sock.shutdown(socket.SHUT_WR)  # a sender killed mid-body
            assert sock.recv(100) == b""  # no answer
        complete = outbound.post(
            f"{server.url}/hook", body=b"{}", headers={}, total=5, connect=2, keep_bytes=100
        )
        assert complete.status_code == 200
        assert [r.body for r in server.requests] == [b"{}"]
