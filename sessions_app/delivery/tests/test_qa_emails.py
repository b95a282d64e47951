"""QA issue emails through the outbox and Resend (a loopback server speaking Resend's API)."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from qa.signals import qa_issue_flagged
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import (
    AutomationError,
    ChatSession,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
)

pytestmark = pytest.mark.django_db

API_KEY = "re_test_key"
QA_TEAM = ["qa-team@example.com", "dev@example.com"]


class FakeResend:
    """Resend's POST /emails: bearer auth, Idempotency-Key deduplication, scripted failures.

    `script` is consumed one entry per request: "ok", "accept-then-hang" (stores the email,
    then answers too late), or a (status, body, headers) failure. `emails` holds what Resend
    would really have sent: one entry per new idempotency key.
    """

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.emails: list[dict] = []
        self.by_key: dict[str, str] = {}
        self.keys_seen: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.path != "/emails" or request.method != "POST":
            return Reply(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Reply(401, {"statusCode": 401, "name": "missing_api_key", "message": "No"})
        key = request.headers.get("idempotency-key")
        with self.lock:
            self.keys_seen.append(key)
            action = self.script.pop(0) if self.script else "ok"
            if isinstance(action, tuple):
                status, body, headers = action
                return Reply(status, body, headers)
            if key and key in self.by_key:  # a replay: same answer, nothing sent again
                return Reply(200, {"id": self.by_key[key]})
            email_id = str(uuid.uuid4())
            self.emails.append(request.json())
            if key:
                self.by_key[key] = email_id
        if action == "accept-then-hang":
            return Reply(200, {"id": email_id}, delay=5)
        return Reply(200, {"id": email_id})


@pytest.fixture
def resend(settings):
    def start(*script) -> tuple[FakeResend, LoopbackServer]:
        fake = FakeResend(*script)
        server = LoopbackServer(fake).__enter__()
        servers.append(server)
        settings.EMAIL_BACKEND = "sessions_app.delivery.resend.EmailBackend"
        settings.ANYMAIL = {
            "RESEND_API_KEY": API_KEY,
            "RESEND_API_URL": f"{server.url}/",
            "REQUESTS_TIMEOUT": 1,
        }
        return fake, server

    servers: list[LoopbackServer] = []
    settings.QA_NOTIFY_EMAILS = QA_TEAM
    settings.DEFAULT_FROM_EMAIL = "leadchat <qa@leadchat.example.com>"
    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def worker() -> DeliveryWorker:
    return DeliveryWorker(name="mail-worker", close_idle_sessions=False)


def flag_issue(session: ChatSession, by, note: str) -> None:
    # What qa.services does when a session enters `issue`: the signal inside the transaction.
    with transaction.atomic():
        qa_issue_flagged.send(sender=ChatSession, session=session, by=by, note=note)


@pytest.fixture
def flagged(captured_lead, qa_user):
    session = captured_lead(name="Zoë <b>Bold</b> O'Neil", email="zoe@example.com")

    def flag(note: str = "The AI promised a 90% discount <script>alert(1)</script>") -> Delivery:
        flag_issue(session, qa_user, note)
        return Delivery.objects.filter(kind=DeliveryKind.EMAIL).latest("id")

    flag.session = session
    return flag


def test_qa_issue_email_goes_through_resend_with_escaped_html_and_an_idempotency_key(
    resend, flagged, worker
):
    fake, server = resend("ok")
    delivery = flagged()
    assert fake.emails == []  # queued with the QA change, sent later by the worker
    assert worker.run(once=True) == 1
    [email] = fake.emails
    request = server.requests[0]
    assert request.headers["idempotency-key"] == delivery.event_id
    assert email["to"] == QA_TEAM
    assert email["from"] == "leadchat <qa@leadchat.example.com>"
    assert "QA" in email["subject"] and "\n" not in email["subject"]
    html, text = email["html"], email["text"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Zoë &lt;b&gt;Bold&lt;/b&gt; O&#x27;Neil" in html
    assert "<script>alert(1)</script>" in text  # plain text is not HTML-escaped
    console = f"/admin/sessions_app/chatsession/{flagged.session.pk}/change/"
    assert console in html and console in text
    assert "zoe@example.com" in text
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_no_email_is_queued_when_the_qa_change_rolls_back(resend, captured_lead, qa_user):
    resend()
    session = captured_lead()
    with pytest.raises(RuntimeError), transaction.atomic():
        qa_issue_flagged.send(sender=ChatSession, session=session, by=qa_user, note="x")
        raise RuntimeError("QA change failed")
    assert not Delivery.objects.filter(kind=DeliveryKind.EMAIL).exists()


def test_no_email_when_nobody_is_on_the_notify_list(settings, captured_lead, qa_user):
    settings.QA_NOTIFY_EMAILS = []
    flag_issue(captured_lead(), qa_user, "note")
    assert not Delivery.objects.filter(kind=DeliveryKind.EMAIL).exists()


def test_429_waits_for_retry_after_then_sends_once_with_the_same_key(resend, flagged, worker):
    fake, _ = resend((429, {"name": "rate_limit_exceeded"}, {"Retry-After": "30"}), "ok")
    delivery = flagged()
    worker.run_batch()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 429
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 29 <= wait <= 31
    assert worker.run_batch() == 0  # not due yet
    worker.run_batch(now=delivery.next_attempt_at + timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert fake.keys_seen == [delivery.event_id, delivery.event_id]
    assert len(fake.emails) == 1


def test_422_validation_error_fails_at_once_and_records_an_automation_error(
    resend, flagged, worker
):
    fake, _ = resend(
        (422, {"statusCode": 422, "name": "validation_error", "message": "Invalid from"}, {})
    )
    delivery = flagged()
    worker.run(once=True)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "Invalid from" in delivery.attempt_log.get().response_body
    error = AutomationError.objects.get()
    assert error.source == AutomationError.Source.EMAIL
    assert error.session == flagged.session
    assert fake.emails == []


def test_500_is_retried_with_the_same_idempotency_key(resend, flagged, worker):
    fake, _ = resend((500, {"name": "internal_server_error"}, {}), "ok")
    delivery = flagged()
    worker.run_batch()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 500
    worker.run_batch(now=timezone.now() + timedelta(seconds=10))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert fake.keys_seen == [delivery.event_id] * 2
    assert len(fake.emails) == 1


def test_a_lost_answer_then_a_retry_sends_no_duplicate_email(resend, flagged, worker):
    """Resend accepted the email but the answer never arrived: the retry's key dedupes it."""
    fake, _ = resend("accept-then-hang", "ok")
    delivery = flagged()
    worker.run_batch()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING  # we could not know it was sent
    worker.run_batch(now=timezone.now() + timedelta(seconds=10))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert fake.keys_seen == [delivery.event_id] * 2
    assert len(fake.emails) == 1  # one email reached the QA team
    # And a later run (a restart) sends nothing more.
    assert worker.run(once=True) == 0
    assert len(fake.keys_seen) == 2


def test_each_flag_is_its_own_email(resend, flagged, worker):
    fake, _ = resend()
    first, second = flagged("first"), flagged("second")
    assert first.event_id != second.event_id
    worker.run(once=True)
    assert len(fake.emails) == 2


def test_console_or_locmem_backend_sends_the_same_email_without_resend(
    settings, flagged, worker, mailoutbox
):
    settings.QA_NOTIFY_EMAILS = QA_TEAM
    flagged("plain")
    worker.run(once=True)
    [message] = mailoutbox
    assert message.to == QA_TEAM
    assert "plain" in message.body
    assert message.alternatives[0][1] == "text/html"
