"""What other apps plug into the delivery worker: jobs in its loop, senders for their kinds.

The registry is sessions_app's; the kinds and jobs here are the tests' own, so nothing of
widget is needed (sessions_app imports no other app).
"""

import pytest

from sessions_app.delivery import DeliveryWorker, registry
from sessions_app.delivery.outbox import channel_reply_enqueue
from sessions_app.delivery.webhooks import SendResult
from sessions_app.models import AutomationError, Delivery, DeliveryKind, DeliveryStatus
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_senders", {})
    monkeypatch.setattr(registry, "_jobs", {})


def run_once() -> int:
    return DeliveryWorker(name="t", close_idle_sessions=False, log=lambda _l: None).run(once=True)


def test_a_registered_job_runs_in_the_worker_loop_until_it_has_nothing(clean_registry):
    backlog = [3, 2, 0]
    calls = []

    def job(worker: str, limit: int) -> int:
        calls.append((worker, limit))
        return backlog.pop(0)

    registry.register_worker_job(name="test-job", run=job)
    assert run_once() == 5
    assert calls == [("t", 20)] * 3


def test_a_job_that_raises_does_not_stop_the_worker(clean_registry):
    def broken(worker: str, limit: int) -> int:
        raise RuntimeError("bug")

    registry.register_worker_job(name="broken", run=broken)
    assert run_once() == 0  # logged, and the loop went on


def test_registering_twice_keeps_one_job(clean_registry):
    registry.register_worker_job(name="j", run=lambda w, n: 0)
    registry.register_worker_job(name="j", run=lambda w, n: 0)
    assert len(registry.worker_jobs()) == 1


def test_a_registered_sender_sends_its_kind_and_names_its_source_on_failure(clean_registry):
    sent = []

    def send(delivery, http):
        sent.append(delivery.payload)
        return SendResult(400, 3, "refused for good", permanent=True)

    registry.register_delivery_sender(
        kind=DeliveryKind.MESSENGER,
        send=send,
        error_source=AutomationError.Source.MESSENGER,
        label="Messenger reply",
    )
    session = ChatSessionFactory()
    row = channel_reply_enqueue(
        kind=DeliveryKind.MESSENGER, event_type="test.reply", session=session, payload={"n": 1}
    )
    run_once()
    row.refresh_from_db()
    assert sent == [{"n": 1}]
    assert row.status == DeliveryStatus.FAILED
    error = AutomationError.objects.get()
    assert error.source == AutomationError.Source.MESSENGER
    assert error.message.startswith(f"Messenger reply {row.event_id} failed")
    assert "refused for good" in error.message


def test_a_kind_without_a_sender_is_kept_not_lost(clean_registry):
    row = channel_reply_enqueue(
        kind=DeliveryKind.MESSENGER,
        event_type="test.reply",
        session=ChatSessionFactory(),
        payload={},
    )
    run_once()
    row.refresh_from_db()
    assert row.status == DeliveryStatus.PENDING
    assert "No sender is registered" in row.last_error
    assert Delivery.objects.count() == 1
