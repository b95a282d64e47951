"""Issue 11 point 16, on the wire: a body over the limit is a 413 and a chunked body without a
length a 411, and either way the connection is closed, so what the client sent after the headers
is never read as a next request.

Raw sockets against both servers the app runs on: gunicorn with the production config
(gunicorn.conf.py, a subprocess) and Django's own server (live_server, what runserver uses).
The Django test client cannot show any of this: it has no connection.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
# What an attacker hides in the body: if the server reads it as a request, a second answer comes.
SMUGGLED = b"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn_server():
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadchat.settings_test",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESS_LOG": "/dev/null",
    }
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "leadchat.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start")
                time.sleep(0.2)
        yield ("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(params=["gunicorn", "django"])
def server(request, settings):
    settings.WIDGET_MAX_BODY_BYTES = 32_768  # the default, which the gunicorn process runs with
    if request.param == "gunicorn":
        return request.getfixturevalue("gunicorn_server")
    live = request.getfixturevalue("live_server")
    host, port = live.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(address, raw: bytes, wait: float = 5.0) -> tuple[bytes, bool]:
    """Send `raw`, read until the server closes or `wait` passes: (bytes read, closed?)."""
    with socket.create_connection(address, timeout=wait) as conn:
        conn.sendall(raw)
        received, closed = b"", False
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                chunk = conn.recv(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
        return received, closed


def post_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answers(received: bytes) -> list[bytes]:
    """The status lines of the HTTP answers in `received`."""
    return [line for line in received.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def head_of(received: bytes) -> str:
    return received.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/api/widget/sessions/", 32_768),
        ("/api/automation/errors/", 65_536),
        ("/api/ingest/messages/", 1_048_576),
    ],
)
def test_body_over_the_limit_is_413_and_the_connection_is_closed(server, path, limit):
    body = (SMUGGLED + b" " * limit)[: limit + 1]
    received, closed = exchange(server, post_head(path, Content_Length=str(len(body))) + body)

    assert answers(received) == [b"HTTP/1.1 413 Request Entity Too Large"]
    assert "connection: close" in head_of(received)
    assert b'"code": "payload_too_large"' in received
    assert closed


def test_body_over_django_upload_limit_elsewhere_is_413_before_the_body_is_sent(server):
    """Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) for every other path. The client
    stops after the headers: the answer comes at once, without waiting for the body. (Django's
    development server then still reads the declared body before it closes; gunicorn closes.)"""
    declared = str(2_621_440 + 1)
    received, _closed = exchange(server, post_head("/accounts/login/", Content_Length=declared))

    assert answers(received) == [b"HTTP/1.1 413 Request Entity Too Large"]
    assert "connection: close" in head_of(received)
    assert "text/plain" in head_of(received)


def test_chunked_body_without_a_length_is_411_and_the_chunks_are_never_a_request(server):
    chunk = b'{"site_key": "x", "page_url": ""}'
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk) + SMUGGLED
    received, closed = exchange(
        server, post_head("/api/widget/sessions/", Transfer_Encoding="chunked") + body
    )

    assert answers(received) == [b"HTTP/1.1 411 Length Required"]
    assert "connection: close" in head_of(received)
    assert b"Content-Length" in received.split(b"\r\n\r\n", 1)[1]  # the message says what to do
    assert closed


def test_an_ordinary_answer_keeps_the_connection_open(server):
    """The control, so that `closed` above can fail: a plain 404 keeps the connection alive."""
    received, closed = exchange(
        server, b"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", wait=1.5
    )
    assert answers(received) == [b"HTTP/1.1 404 Not Found"]
    assert "connection: close" not in head_of(received)
    assert not closed
