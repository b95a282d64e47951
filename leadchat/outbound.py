"""Every outbound HTTP request of leadchat: one POST under a wall-clock deadline, to allowed
addresses only. Webhook sends (`sessions_app.delivery.webhooks`) and agent backends
(`widget.backends.http`) both go through `post()`.

Two promises, each kept below requests' public API:

- **The deadline is total.** urllib3's `Timeout(total=...)` and requests' read timeout bound
  each socket operation, not the request: they restart on every `recv`, so a peer that drips its
  status line or headers one byte a second holds the caller for as long as it likes (urllib3
  documents this in `util/timeout.py`; psf/requests#1928, urllib3#1271, encode/httpx#1450). Here
  a watchdog timer shuts down the socket at the deadline (`shutdown(2)` on a duplicate of its
  file descriptor, so it works under TLS and wakes a blocked `connect`, `send` or `recv` alike),
  and every socket operation also gets at most the time that is left. `getaddrinfo` cannot be
  interrupted, so it runs on a small resolver pool and the caller stops waiting for it at the
  deadline (the name's own DNS server is as much the peer's as the socket is).
- **Only allowed addresses are connected to.** The host is resolved once in our connection
  class and each address is checked before the socket connects to it; the request then goes to
  exactly that address with the Host header and TLS SNI of the name, so a DNS answer that
  changes between a check and the connect (DNS rebinding) cannot slip through. Link-local and
  cloud-metadata addresses are always refused; loopback and private ranges unless
  `OUTBOUND_ALLOW_PRIVATE_NETWORKS` is on (a self-hosted n8n on the same host or LAN).

Redirects are never followed and the environment's proxy settings are ignored (`trust_env`
off): through a proxy the address check would see the proxy, not the target.

requests-hardened (Saleor) was considered for the address filter: it blocks private and
loopback ranges with one switch for loopback, but cannot allow private networks while still
refusing link-local and metadata addresses, and has no total deadline either.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import os
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

# --- Address policy ----------------------------------------------------------------------------

# Instance metadata services: credentials live there. Refused even when private networks are
# allowed (fd00:ec2::254 is inside fc00::/7 and 100.100.100.200 inside 100.64.0.0/10).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def allow_private_networks() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_NETWORKS", False))


def address_problem(address: str, *, allow_private: bool | None = None) -> str | None:
    """Why leadchat must not connect to `address` (an IP literal), or None when it may."""
    if allow_private is None:
        allow_private = allow_private_networks()
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0].strip("[]")
        )
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wearing IPv6 clothes reaches the IPv4 host: judge that one.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address, always blocked"
    if ip.is_link_local:
        return "a link-local address, always blocked"
    reserved = ip.is_reserved and not ip.is_loopback  # ::1 sits inside the reserved ::/8
    if ip.is_unspecified or ip.is_multicast or reserved or ip in _THIS_NETWORK:
        return "not a host address, always blocked"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address (set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to allow it)"
    if not ip.is_global:
        return "a private address (set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to allow it)"
    return None


def url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why an outbound URL an admin enters can never be used, or None.

    Checks the scheme, a literal IP host, well-known metadata names and, with `resolve`, every
    address the name resolves to now. A name that does not resolve (yet) passes: the check at
    connect time (`post`) is the one that counts, this one gives the admin an early, clear error.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    host = host.rstrip(".").lower()
    if host in METADATA_HOSTNAMES:
        return f"points at {host}, a cloud metadata service, always blocked"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        literal = True
    except ValueError:
        literal = False
    if literal:
        problem = address_problem(host)
        return f"points at {host}, {problem}" if problem else None
    if not resolve:
        return None
    try:
        infos = resolve_host(host, port or 443, family=0, timeout=ADMIN_RESOLVE_SECONDS)
    except (OSError, UnicodeError, TimeoutError):
        return None
    for info in infos:
        address = str(info[4][0])
        problem = address_problem(address)
        if problem:
            return f"points at {host}, which resolves to {address}: {problem}"
    return None


# --- Name resolution --------------------------------------------------------------------------

ADMIN_RESOLVE_SECONDS = 3.0
# getaddrinfo blocks until the system resolver gives up (resolv.conf: timeout x attempts x
# servers, up to half a minute). A few threads do it; a caller waits at most its own deadline,
# so a slow DNS server queues lookups but never holds a request past its budget.
_resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="outbound-dns")


def resolve_host(host: str, port: int, *, family: int, timeout: float) -> list[Any]:
    """socket.getaddrinfo(host, port, family, SOCK_STREAM), or TimeoutError after `timeout`."""
    future = _resolver.submit(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(timeout, 0.0))
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"Resolving {host} took longer than {timeout:.1f} s.") from None


# --- The deadline -----------------------------------------------------------------------------


class _Deadline:
    """One request's wall clock: its watchdog and the sockets it may have to cut."""

    def __init__(self, total: float, connect: float) -> None:
        self.started = time.monotonic()
        self.at = self.started + total
        self.connect = connect
        self.expired = False
        self.blocked: str = ""
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        _watchdog.watch(self)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Arrange for `sock` to be shut down at the deadline (at once if it has passed)."""
        try:
            # A duplicate descriptor of the same socket: shutdown(2) acts on the socket, so it
            # reaches the TLS socket wrapped around it later, and the duplicate stays ours to
            # close (no risk of shutting down a reused descriptor number).
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            if self._closed or self.expired:
                _shutdown(dup)
                dup.close()
                return
            self._sockets.append(dup)

    def _expire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def close(self) -> None:
        # The watchdog drops a closed deadline when its time comes (nothing to cancel).
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


class _Watchdog:
    """One thread that expires every request's deadline at its time, in this process.

    A `threading.Timer` per request started (and, for a request that ends in time, stopped) an
    OS thread per outbound POST: at outbox volume a large part of a delivery's CPU
    (bench/outbox_drain.py). Here the deadlines wait in a heap ordered by time; the thread
    sleeps until the earliest, expires what is due, and a deadline closed before its time is
    simply dropped when it comes up. Started on first use, and again in a forked child (a
    gunicorn or worker process forked after a request would otherwise have no watchdog).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._wake = threading.Condition(threading.Lock())
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="outbound-deadlines", daemon=True
                )
                self._thread.start()
            elif earliest is None or deadline.at < earliest:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                at, _, deadline = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            deadline._expire()  # outside the lock: it takes the deadline's own

    def _after_fork(self) -> None:
        self._heap = []
        self._wake = threading.Condition(threading.Lock())
        self._thread = None


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog._after_fork)


def _shutdown(sock: socket.socket) -> None:
    # OSError: not connected (yet, or any more), so nothing to wake.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_local = threading.local()


def _current() -> _Deadline:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        # The guarded adapter is only ever mounted by `session()`; reaching it outside `post()`
        # would mean a request with neither deadline nor address check.
        raise RuntimeError("leadchat.outbound connections are opened only through post().")
    return deadline


if TYPE_CHECKING:
    # The connections this is mixed into, so the type checker knows their attributes.
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _GuardedConnectionMixin(_ConnectionBase):
    """urllib3 connection that resolves, checks and connects itself, under the deadline."""

    def _new_conn(self) -> socket.socket:
        deadline = _current()
        host = self._dns_host.strip("[]")
        try:
            infos = resolve_host(
                host, self.port, family=allowed_gai_family(), timeout=deadline.remaining()
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, str(exc)) from exc
        error: Exception | None = None
        for family, kind, proto, _, address in infos:
            problem = address_problem(str(address[0]))
            if problem:
                deadline.blocked = f"{self.host} resolves to {address[0]}, {problem}."
                continue
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            sock = None
            try:
                sock = socket.socket(family, kind, proto)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(min(deadline.connect, remaining))
                deadline.watch(sock)
                sock.connect(address)
            except TimeoutError as exc:
                if sock is not None:
                    sock.close()
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
                error.__cause__ = exc
                continue
            except OSError as exc:  # refused, unreachable, or no IPv6 on this host
                if sock is not None:
                    sock.close()
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                continue
            deadline.blocked = ""
            return sock
        if error is not None:
            raise error
        if deadline.blocked:
            raise NewConnectionError(self, f"Blocked: {deadline.blocked}")
        raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.")

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection from the pool was watched by an earlier request's deadline.
        if self.sock is not None:
            _current().watch(self.sock)
        super().request(*args, **kwargs)


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


def session() -> requests.Session:
    """A requests session whose connections are deadline-bound and address-checked."""
    return harden(requests.Session())


def harden(http: requests.Session) -> requests.Session:
    """Mount the guarded adapter on `http` (idempotent); its pool keeps connections alive."""
    if not isinstance(http.get_adapter("https://x"), GuardedAdapter):
        http.mount("http://", GuardedAdapter())
        http.mount("https://", GuardedAdapter())
    http.trust_env = False
    return http


# --- The POST ---------------------------------------------------------------------------------


@dataclass
class Response:
    status_code: int
    headers: Mapping[str, str]
    body: bytes  # at most `keep_bytes`
    truncated: bool = False  # the peer sent more than was kept
    duration_ms: int = 0


@dataclass
class OutboundError(Exception):
    """The request did not produce a whole answer in time.

    `kind`: "timeout" (the deadline passed, at any stage), "blocked" (the address is not
    allowed; permanent), "connect" (nothing was sent: refused, unreachable, no such host),
    "invalid_url" (permanent), "too_large", or "failed" (the connection broke mid-way).
    """

    kind: str
    message: str
    duration_ms: int = 0
    status_code: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def permanent(self) -> bool:
        return self.kind in ("blocked", "invalid_url", "too_large")


def post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    total: float,
    connect: float,
    keep_bytes: int,
    too_large: str = "truncate",
    http: requests.Session | None = None,
    method: str = "POST",
) -> Response:
    """POST `body` once and read the answer, all of it within `total` seconds of wall clock.

    `method="GET"` (with an empty body) reads instead, under the same rules (the Graph API's
    connection check).

    Keeps the first `keep_bytes` of the answer; beyond it, `too_large="truncate"` stops reading
    (and says so in `truncated`), `"error"` raises OutboundError("too_large").
    Raises OutboundError for anything that is not a complete HTTP answer; never follows redirects.
    """
    sender = harden(http) if http is not None else _default_session()
    deadline = _Deadline(total, min(connect, total))
    _local.deadline = deadline

    def elapsed_ms() -> int:
        return int((time.monotonic() - deadline.started) * 1000)

    def fail(kind: str, message: str, **extra: Any) -> OutboundError:
        if deadline.expired:
            kind, message = "timeout", f"No complete answer within {total:g} s."
        elif deadline.blocked and kind in ("connect", "failed"):
            kind, message = "blocked", deadline.blocked
        return OutboundError(kind, message, elapsed_ms(), **extra)

    try:
        remaining = max(deadline.remaining(), 0.001)
        try:
            prepared = sender.prepare_request(
                requests.Request(
                    method, url, data=None if method == "GET" else body, headers=dict(headers)
                )
            )
            # The adapter itself, not Session.send: even with allow_redirects=False, requests
            # reads a 3xx answer's whole body (to find the next hop) and stores cookies.
            response = sender.get_adapter(prepared.url or url).send(
                prepared,
                stream=True,
                timeout=(min(connect, remaining), remaining),
                verify=True,
                proxies={},
            )
        except requests.Timeout as exc:
            raise fail("timeout", f"Timed out: {_short(exc)}") from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise fail("invalid_url", f"The URL is not valid: {_short(exc)}") from None
        except requests.ConnectionError as exc:
            kind = "connect" if _nothing_sent(exc) else "failed"
            raise fail(kind, f"Connection failed: {_short(exc)}") from None
        except requests.RequestException as exc:
            raise fail("failed", f"Request failed: {_short(exc)}") from None

        kept = bytearray()
        truncated = False
        # A redirect is never followed, so its body is never read (it may be endless).
        chunks = () if 300 <= response.status_code < 400 else response.iter_content(16_384)
        with response:
            try:
                for chunk in chunks:
                    room = keep_bytes - len(kept)
                    if len(chunk) > room:
                        kept += chunk[:room]
                        truncated = True
                        break
                    kept += chunk
            except requests.RequestException as exc:
                raise fail(
                    "failed",
                    f"Reading the answer failed: {_short(exc)}",
                    status_code=response.status_code,
                ) from None
        if deadline.expired:
            # A body read to EOF may have ended only because the watchdog cut the socket.
            raise fail("timeout", "", status_code=response.status_code)
        if truncated and too_large == "error":
            raise fail(
                "too_large",
                f"The answer is larger than {keep_bytes:,} bytes.",
                status_code=response.status_code,
            )
        return Response(
            status_code=response.status_code,
            headers=response.headers,
            body=bytes(kept),
            truncated=truncated,
            duration_ms=elapsed_ms(),
        )
    finally:
        _local.deadline = None
        deadline.close()


_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def _default_session() -> requests.Session:
    # One pool per process (keep-alive to the same n8n or LLM host); requests' Session is used
    # from several threads here only through its adapter's pool, which is thread-safe.
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = session()
        return _shared


def _nothing_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return isinstance(exc, requests.ConnectTimeout) or any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Connection refused")
    )


def _short(exc: Exception) -> str:
    return str(exc)[:500]
