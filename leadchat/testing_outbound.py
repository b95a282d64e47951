"""Test helper: a loopback peer that misbehaves at the byte level (nothing here is product code).

`DripServer` reads the request, then sends its answer one byte every `interval` seconds, from
the status line on (`drip="headers"`) or after whole headers with an endless body
(`drip="body"`, status `status`), or accepts and never answers (`drip="silent"`). With
`answer_first=True` it first answers one request on the connection at once (keep-alive), then
drips the next one. http.server cannot do this: it writes whole lines.
"""

from __future__ import annotations

import socket
import threading
import time

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * 200


class DripServer:
    def __init__(
        self,
        *,
        interval: float = 0.5,
        drip: str = "headers",
        status: str = "200 OK",
        answer_first: bool = False,
        answer: bytes = ANSWER,
        host: str = "127.0.0.1",
    ):
        self.answer = answer
        self.interval = interval
        self.drip = drip
        self.status = status
        self.answer_first = answer_first
        self._stop = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.host = host
        self.connections = 0
        self.bytes_sent = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                if self.answer_first:
                    if not self._read_request(conn):
                        return
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                if not self._read_request(conn):
                    return
                if self.drip == "silent":
                    self._stop.wait(60)
                    return
                if self.drip == "body":
                    conn.sendall(f"HTTP/1.1 {self.status}\r\nLocation: /next\r\n\r\n".encode())
                    payload = iter(lambda: b" ", None)  # endless, no length: read until close
                else:
                    payload = (bytes([b]) for b in self.answer)
                for byte in payload:
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(byte)
                    self.bytes_sent += 1
            except OSError:
                return  # the client cut us off: what the tests expect

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        """Read one request (headers and a Content-Length body); False if the client left."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or 0)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            body += chunk
        return True


def timed(function, *args, **kwargs):
    """(result or raised exception, seconds it took)."""
    started = time.monotonic()
    try:
        result = function(*args, **kwargs)
    except Exception as exc:  # returned to the test to assert on
        result = exc
    return result, time.monotonic() - started
