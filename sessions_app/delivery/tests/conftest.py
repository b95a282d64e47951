"""Fixtures for the delivery tests: a Standard Webhooks receiver, endpoints, captured leads."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadchat.testing import LoopbackServer, RecordedRequest, Reply, subprocess_database_url
from sessions_app.delivery import outbox
from sessions_app.delivery.webhooks import SendResult
from sessions_app.models import ChatSession, Delivery, WebhookEndpoint
from sessions_app.services import lead_capture, message_add, session_start
from widget.tests.factories import SiteFactory

BASE_DIR = Path(__file__).resolve().parents[3]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class VerifyingReceiver:
    """n8n's side of a webhook: verifies every request with the standardwebhooks library.

    `status` (or `answer`) decides the reply. `verified` holds the event id of every request
    whose signature checked out, `accepted` those answered 2xx, `rejected` the requests that
    failed verification, `overlaps` event ids that arrived while the same id was in flight.
    """

    secret: str = SECRET
    status: int = 200
    answer: Callable[[RecordedRequest], Reply] | None = None
    verified: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    overlaps: list[str] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: RecordedRequest) -> Reply:
        event_id = request.headers.get("webhook-id", "?")
        # One event goes to each endpoint (URL) under the same id: a row is (URL, event id).
        row = f"{request.path}|{event_id}"
        try:
            Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.rejected.append(f"{event_id}: {exc}")
            return Reply(400, {"error": str(exc)})
        with self.lock:
            if row in self.in_flight:
                self.overlaps.append(row)
            self.in_flight.add(row)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.answer:
                reply = self.answer(request)
            else:
                reply = Reply(self.status, {"received": event_id})
            with self.lock:
                self.verified.append(event_id)
                if 200 <= reply.status < 300:
                    self.accepted.append(event_id)
            return reply
        finally:
            with self.lock:
                self.in_flight.discard(row)


@pytest.fixture
def receiver() -> VerifyingReceiver:
    return VerifyingReceiver()


@pytest.fixture
def receiver_server(receiver: VerifyingReceiver) -> Iterator[LoopbackServer]:
    with LoopbackServer(receiver) as server:
        yield server


def loopback_on_port(port: int, responder: Callable[[RecordedRequest], Reply]) -> LoopbackServer:
    """A LoopbackServer bound to a chosen port: a receiver that comes back up at the same URL."""
    server = LoopbackServer(responder)
    handler = server._httpd.RequestHandlerClass
    server._httpd.server_close()
    server._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server._httpd.daemon_threads = True
    server._thread = threading.Thread(target=server._httpd.serve_forever, daemon=True)
    return server


@pytest.fixture
def make_endpoint(db) -> Callable[..., WebhookEndpoint]:
    def make(url: str, **kwargs) -> WebhookEndpoint:
        kwargs.setdefault("name", f"n8n {url}")
        kwargs.setdefault("secret", SECRET)
        return WebhookEndpoint.objects.create(url=url, **kwargs)

    return make


@pytest.fixture
def endpoint(receiver_server: LoopbackServer, make_endpoint) -> WebhookEndpoint:
    return make_endpoint(f"{receiver_server.url}/webhook/lead")


def capture_lead(site=None, *, name: str = "Ada Lovelace", email: str = "ada@example.com"):
    """A real conversation through the services, ending in a captured lead."""
    session, _token = session_start(
        site=site,
        page_url="https://landing.example.com/offer?utm_source=ads",
        utm={"utm_source": "ads", "utm_campaign": "spring"},
        greeting="Hi! How can we help?",
    )
    message_add(session=session, role="visitor", text="I want a quote")
    lead_capture(session=session, name=name, email=email)
    session.refresh_from_db()
    return session


@pytest.fixture
def lead_site(db):
    return SiteFactory(name="Landing")


@pytest.fixture
def captured_lead(lead_site) -> Callable[..., ChatSession]:
    def make(**kwargs) -> ChatSession:
        return capture_lead(lead_site, **kwargs)

    return make


# --- Worker subprocesses ----------------------------------------------------------------------


class WorkerProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        url = subprocess_database_url()
        if url is None:
            pytest.skip("worker subprocesses need a database file or server, not :memory:")
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "leadchat.settings_test",
            "DATABASE_URL": url,
            "DELIVERY_POLL_SECONDS": "0.1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "deliver_webhooks", "--no-close-idle", *args],
            cwd=BASE_DIR,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def worker_processes() -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(*args, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop_quietly()


def wait_until(condition: Callable[[], bool], timeout: float = 30, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def send_claimed(
    *, delivery: Delivery, result: SendResult, now=None, worker: str = "w", retry: bool = True
) -> Delivery | None:
    """What the worker does with one claimed row, with the send's outcome given: begin, record."""
    attempt = outbox.delivery_send_begin(delivery=delivery, worker=worker, now=now)
    assert attempt is not None, "the claim no longer holds the row"
    return outbox.delivery_record_attempt(
        delivery=delivery, attempt=attempt, result=result, now=now, retry=retry
    )
