"""The outbox services: enqueue inside the transaction, claim, record, redeliver, cancel, erase."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from sessions_app.delivery import outbox
from sessions_app.delivery.tests.conftest import send_claimed
from sessions_app.delivery.webhooks import SendResult
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import (
    AutomationError,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    DeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from sessions_app.services import lead_capture, session_delivery_state_set, session_start
from sessions_app.signals import sessions_erasing

pytestmark = pytest.mark.django_db


def test_lead_capture_writes_one_delivery_per_endpoint_with_a_shared_event_id(
    make_endpoint, captured_lead, lead_site
):
    make_endpoint("http://127.0.0.1:9/global")
    make_endpoint("http://127.0.0.1:9/site", site=lead_site)
    make_endpoint("http://127.0.0.1:9/other-event", events=["webhook.test"])
    make_endpoint("http://127.0.0.1:9/off", is_active=False)
    session = captured_lead()
    deliveries = list(Delivery.objects.filter(session=session).order_by("endpoint__url"))
    # The switched-off endpoint gets its row too: it waits there (paused), it is not dropped.
    assert [d.endpoint.url.rsplit("/", 1)[1] for d in deliveries] == ["global", "off", "site"]
    assert len({d.event_id for d in deliveries}) == 1
    delivery = deliveries[0]
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.event_type == WebhookEvent.LEAD_CAPTURED
    data = delivery.payload["data"]
    assert delivery.payload["event_id"] == delivery.event_id
    assert data["lead"]["email"] == "ada@example.com"
    assert data["lead"]["name"] == "Ada Lovelace"
    assert data["session"]["id"] == str(session.public_id)
    assert data["session"]["utm"]["source"] == "ads"
    assert data["session"]["url"].endswith(f"{session.public_id}/")
    assert data["site"]["name"] == "Landing"
    assert [m["role"] for m in data["transcript"]] == ["ai", "visitor"]
    assert data["session"]["completion_status"] == "complete"
    assert session.delivery_state == DeliveryState.PENDING


def test_no_delivery_row_survives_when_the_lead_transaction_rolls_back(make_endpoint, lead_site):
    make_endpoint("http://127.0.0.1:9/hook")
    session, _ = session_start(site=lead_site)
    with pytest.raises(RuntimeError), transaction.atomic():
        lead_capture(session=session, name="Ada", email="ada@example.com")
        assert Delivery.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("crash before commit")
    assert Delivery.objects.count() == 0  # ...and gone with it


def test_lead_without_any_endpoint_marks_delivery_state_disabled(captured_lead):
    session = captured_lead()
    assert Delivery.objects.count() == 0
    assert session.delivery_state == DeliveryState.DISABLED


def test_lead_webhook_url_setting_becomes_a_global_endpoint(settings, captured_lead):
    settings.LEAD_WEBHOOK_URL = "http://127.0.0.1:9/from-settings"
    settings.LEAD_WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings.LEAD_WEBHOOK_AUTH_HEADER = "X-N8N-Auth"
    settings.LEAD_WEBHOOK_AUTH_VALUE = "let-me-in"
    captured_lead()
    endpoint = WebhookEndpoint.objects.get(from_settings=True)
    assert endpoint.url == "http://127.0.0.1:9/from-settings"
    assert endpoint.secret == settings.LEAD_WEBHOOK_SECRET
    assert endpoint.auth_header_name == "X-N8N-Auth"
    assert Delivery.objects.get().endpoint == endpoint

    settings.LEAD_WEBHOOK_URL = ""
    captured_lead(email="grace@example.com")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert Delivery.objects.count() == 1


def test_claim_takes_only_due_rows_and_never_the_same_row_twice(make_endpoint, captured_lead):
    make_endpoint("http://127.0.0.1:9/hook")
    for i in range(5):
        captured_lead(email=f"lead{i}@example.com")
    Delivery.objects.filter(subject_email="lead4@example.com").update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    first = outbox.deliveries_claim(worker="a", limit=3)
    second = outbox.deliveries_claim(worker="b", limit=10)
    assert len(first) == 3 and len(second) == 1
    assert not {d.pk for d in first} & {d.pk for d in second}
    # A claim sends nothing, so it counts no attempt: `delivery_send_begin` does, per row.
    assert all(d.status == DeliveryStatus.SENDING and d.attempts == 0 for d in first + second)
    assert outbox.deliveries_claim(worker="c", limit=10) == []


def test_claim_takes_back_rows_whose_lease_expired(make_endpoint, captured_lead, settings):
    make_endpoint("http://127.0.0.1:9/hook")
    captured_lead()
    [claimed] = outbox.deliveries_claim(worker="dead-worker", limit=1)
    dead_attempt = outbox.delivery_send_begin(delivery=claimed, worker="dead-worker")
    assert outbox.deliveries_claim(worker="b", limit=1) == []
    later = timezone.now() + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    [reclaimed] = outbox.deliveries_claim(worker="b", limit=1, now=later)
    assert reclaimed.pk == claimed.pk and reclaimed.claimed_by == "b"
    # The dead worker's claim is fenced off: it can neither start another send...
    assert outbox.delivery_send_begin(delivery=claimed, worker="dead-worker") is None
    attempt = outbox.delivery_send_begin(delivery=reclaimed, worker="b", now=later)
    assert attempt.number == 2
    # ...nor move the row with a late result (which is still logged, since it happened).
    outbox.delivery_record_attempt(
        delivery=claimed, attempt=dead_attempt, result=SendResult(200, 5)
    )
    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.SENDING and row.claimed_by == "b"
    assert DeliveryAttempt.objects.get(pk=dead_attempt.pk).status_code == 200


def test_rows_of_a_disabled_endpoint_wait_instead_of_being_sent(make_endpoint, captured_lead):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    captured_lead()
    outbox.webhook_endpoint_set_active(endpoint=endpoint, active=False)
    assert outbox.deliveries_claim(worker="a", limit=5) == []
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def claim_one() -> Delivery:
    [delivery] = outbox.deliveries_claim(worker="w", limit=1)
    return delivery


def test_failures_follow_the_schedule_then_fail_with_an_automation_error(
    make_endpoint, captured_lead, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300]
    make_endpoint("http://127.0.0.1:9/hook")
    session = captured_lead()
    now = timezone.now()
    row = send_claimed(delivery=claim_one(), result=SendResult(500, 12, "HTTP 500"), now=now)
    assert row.status == DeliveryStatus.PENDING
    assert 4 <= (row.next_attempt_at - now).total_seconds() <= 6  # 5 s +-20% jitter
    later = row.next_attempt_at
    [again] = outbox.deliveries_claim(worker="w", limit=1, now=later)
    row = send_claimed(delivery=again, result=SendResult(500, 9, "HTTP 500"), now=later)
    assert 240 <= (row.next_attempt_at - later).total_seconds() <= 360
    last = row.next_attempt_at
    [third] = outbox.deliveries_claim(worker="w", limit=1, now=last)
    row = send_claimed(delivery=third, result=SendResult(None, 3, "Connection failed"), now=last)
    assert row.status == DeliveryStatus.FAILED and row.attempts == 3
    assert list(row.attempt_log.order_by("number").values_list("number", flat=True)) == [1, 2, 3]
    error = AutomationError.objects.get()
    assert error.source == AutomationError.Source.WEBHOOK
    assert error.session == session
    assert row.event_id in error.message
    session.refresh_from_db()
    assert session.delivery_state == DeliveryState.FAILED


def test_redeliver_keeps_the_event_id_and_records_who_asked(
    make_endpoint, captured_lead, admin_role_user
):
    make_endpoint("http://127.0.0.1:9/hook")
    session = captured_lead()
    delivered = send_claimed(delivery=claim_one(), result=SendResult(200, 4))
    assert delivered.status == DeliveryStatus.DELIVERED
    session.refresh_from_db()
    assert session.delivery_state == DeliveryState.DELIVERED

    outbox.delivery_redeliver(delivery=delivered, by=admin_role_user)
    session.refresh_from_db()
    assert session.delivery_state == DeliveryState.PENDING
    again = claim_one()
    assert again.event_id == delivered.event_id
    send_claimed(delivery=again, result=SendResult(204, 3))
    attempts = list(DeliveryAttempt.objects.order_by("number"))
    assert [a.requested_by for a in attempts] == [None, admin_role_user]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_redeliver_refused_while_sending_and_for_a_disabled_endpoint(
    make_endpoint, captured_lead, admin_role_user
):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    captured_lead()
    sending = claim_one()
    with pytest.raises(TransitionNotAllowed, match="being sent right now"):
        outbox.delivery_redeliver(delivery=sending, by=admin_role_user)
    send_claimed(delivery=sending, result=SendResult(410, 3, "HTTP 410"))
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    with pytest.raises(TransitionNotAllowed, match="disabled"):
        outbox.delivery_redeliver(delivery=sending, by=admin_role_user)


def test_cancel_stops_a_pending_delivery_and_is_refused_twice(
    make_endpoint, captured_lead, admin_role_user
):
    make_endpoint("http://127.0.0.1:9/hook")
    session = captured_lead()
    delivery = Delivery.objects.get()
    outbox.delivery_cancel(delivery=delivery, by=admin_role_user)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED
    assert delivery.cancelled_by == admin_role_user
    assert outbox.deliveries_claim(worker="w", limit=5) == []
    session.refresh_from_db()
    assert session.delivery_state == DeliveryState.DISABLED
    with pytest.raises(TransitionNotAllowed):
        outbox.delivery_cancel(delivery=delivery, by=admin_role_user)


def test_erasure_removes_deliveries_and_attempts_of_those_people(make_endpoint, captured_lead):
    make_endpoint("http://127.0.0.1:9/hook")
    erased = captured_lead(email="erase.me@example.com")
    kept = captured_lead(email="keep.me@example.com")
    send_claimed(delivery=claim_one(), result=SendResult(500, 1, "HTTP 500"))
    orphan = Delivery.objects.get(session=erased)
    orphan.session = None  # a row whose session is already gone is found by email
    orphan.save(update_fields=["session"])
    with transaction.atomic():
        sessions_erasing.send(
            sender=type(erased), session_ids=[erased.pk], emails=["Erase.Me@example.com"]
        )
    assert list(Delivery.objects.values_list("session", flat=True)) == [kept.pk]
    assert not DeliveryAttempt.objects.exclude(delivery__session=kept).exists()


@pytest.mark.django_db
def test_delivery_state_is_set_through_the_sessions_service_which_bumps_updated_at():
    session, _token = session_start(site=None)
    before = session.updated_at
    assert session_delivery_state_set(session=session, state=DeliveryState.PENDING)
    session.refresh_from_db()
    assert session.delivery_state == DeliveryState.PENDING and session.updated_at > before
    assert not session_delivery_state_set(session=session, state=DeliveryState.PENDING)
    with pytest.raises(ValueError, match="Unknown delivery state"):
        session_delivery_state_set(session=session, state="lost")
