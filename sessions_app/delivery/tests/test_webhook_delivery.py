"""The worker against real loopback receivers: signatures, the status matrix, outages."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadchat.testing import LoopbackServer, Reply, free_port
from sessions_app.delivery.tests.conftest import SECRET, loopback_on_port
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import (
    AutomationError,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    DeliveryStatus,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker() -> DeliveryWorker:
    return DeliveryWorker(name="test-worker", batch_size=50, close_idle_sessions=False)


def test_every_delivery_verifies_with_standardwebhooks_and_carries_the_lead(
    endpoint, receiver, receiver_server, captured_lead, worker
):
    sessions = [captured_lead(email=f"lead{i}@example.com") for i in range(3)]
    assert worker.run(once=True) == 3
    assert receiver.rejected == []
    assert sorted(receiver.verified) == sorted(Delivery.objects.values_list("event_id", flat=True))
    request = receiver_server.requests[0]
    assert request.path == "/webhook/lead"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["type"] == "lead.captured"
    assert body["event_id"] == request.headers["webhook-id"]
    assert body["data"]["lead"]["email"] in {s.lead_email for s in sessions}
    for session in sessions:
        session.refresh_from_db()
        assert session.delivery_state == DeliveryState.DELIVERED
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None


def test_tampered_body_id_or_timestamp_is_rejected_by_the_receiver_library(
    endpoint, receiver_server, captured_lead, worker
):
    captured_lead()
    worker.run(once=True)
    request = receiver_server.requests[0]
    verifier = Webhook(SECRET)
    verifier.verify(request.body, request.headers)  # the genuine request passes
    tampered_body = request.body.replace(b"ada@example.com", b"eve@example.com")
    tampered_id = {**request.headers, "webhook-id": "evt_forged"}
    tampered_time = {
        **request.headers,
        "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 1),
    }
    for body, headers in [
        (tampered_body, request.headers),
        (request.body, tampered_id),
        (request.body, tampered_time),
    ]:
        with pytest.raises(WebhookVerificationError):
            verifier.verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(request.body, request.headers)  # wrong secret


def test_optional_auth_header_is_sent_for_n8n_header_auth(
    receiver_server, make_endpoint, captured_lead, worker
):
    make_endpoint(
        f"{receiver_server.url}/hook", auth_header_name="X-N8N-Auth", auth_header_value="s3cret"
    )
    captured_lead()
    worker.run(once=True)
    assert receiver_server.requests[0].headers["x-n8n-auth"] == "s3cret"


def run_one(receiver_server_url: str, make_endpoint, captured_lead, worker) -> Delivery:
    make_endpoint(receiver_server_url)
    captured_lead()
    worker.run_batch()
    return Delivery.objects.select_related("endpoint").get()


@pytest.mark.parametrize(
    ("status", "expected", "endpoint_active"),
    [
        (200, DeliveryStatus.DELIVERED, True),
        (204, DeliveryStatus.DELIVERED, True),
        (301, DeliveryStatus.PENDING, True),
        (400, DeliveryStatus.PENDING, True),
        (404, DeliveryStatus.PENDING, True),
        # 410: the endpoint goes off and the lead waits for it (paused), it is not failed.
        (410, DeliveryStatus.PENDING, False),
        (500, DeliveryStatus.PENDING, True),
    ],
)
def test_status_matrix(status, expected, endpoint_active, make_endpoint, captured_lead, worker):
    headers = {"Location": "https://elsewhere.example.com/"} if status == 301 else {}
    body = "" if status == 204 else {"status": status, "pad": "x" * 10_000}
    with LoopbackServer(lambda request: Reply(status, body, headers)) as server:
        delivery = run_one(f"{server.url}/hook", make_endpoint, captured_lead, worker)
        assert len(server.requests) == 1  # a redirect is never followed
    assert delivery.status == expected
    assert delivery.last_status_code == status
    assert delivery.endpoint.is_active is endpoint_active
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == status
    assert len(attempt.response_body) <= 4096
    if status >= 300:
        assert delivery.endpoint.last_failure_at is not None
        assert attempt.error
    if expected == DeliveryStatus.PENDING and status != 410:
        # Retried on the schedule: the first wait is 5 s with +-20% jitter.
        wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
        assert 3.9 <= wait <= 6.1
    if status == 301:
        assert "not followed" in attempt.error
    if status == 410:
        assert "410" in delivery.endpoint.disabled_reason
        assert AutomationError.objects.get().source == AutomationError.Source.WEBHOOK
        assert delivery.session.delivery_state == DeliveryState.PAUSED


@pytest.mark.parametrize("form", ["seconds", "http-date"])
@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_honour_retry_after(status, form, make_endpoint, captured_lead, worker):
    retry_after = (
        "120"
        if form == "seconds"
        else (timezone.now() + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    )
    with LoopbackServer(
        lambda request: Reply(status, "slow down", {"Retry-After": retry_after})
    ) as server:
        delivery = run_one(f"{server.url}/hook", make_endpoint, captured_lead, worker)
    assert delivery.status == DeliveryStatus.PENDING
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 100 <= wait <= 121


def test_timeout_is_bounded_by_the_total_timeout(settings, make_endpoint, captured_lead, worker):
    settings.WEBHOOK_TOTAL_TIMEOUT = 0.5
    with LoopbackServer(lambda request: Reply(200, "late", delay=5)) as server:
        delivery = run_one(f"{server.url}/hook", make_endpoint, captured_lead, worker)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert "Timed out" in delivery.last_error
    assert delivery.last_latency_ms < 2000


def test_connection_refused_is_retried(make_endpoint, captured_lead, worker):
    delivery = run_one(f"http://127.0.0.1:{free_port()}/hook", make_endpoint, captured_lead, worker)
    assert delivery.status == DeliveryStatus.PENDING
    assert "Connection failed" in delivery.last_error
    assert delivery.attempts == 1


def test_receiver_down_while_200_leads_arrive_then_up_delivers_every_one(
    receiver, make_endpoint, captured_lead, worker
):
    """n8n is down (connection refused) for hours; nothing is lost when it comes back."""
    port = free_port()
    make_endpoint(f"http://127.0.0.1:{port}/webhook/lead")
    for i in range(200):
        captured_lead(email=f"lead{i:03}@example.com")
    event_ids = set(Delivery.objects.values_list("event_id", flat=True))
    assert len(event_ids) == 200

    clock = timezone.now()
    # Down: three rounds of retries, each when the schedule says they are due.
    for _ in range(3):
        while worker.run_batch(now=clock):
            pass
        assert not Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
        clock = max(Delivery.objects.values_list("next_attempt_at", flat=True))
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {3}
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}

    with loopback_on_port(port, receiver):
        clock += timedelta(hours=3)
        while worker.run_batch(now=clock):
            pass
    assert set(receiver.accepted) == event_ids
    assert receiver.rejected == []
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 200
    assert DeliveryAttempt.objects.count() == 200 * 4


def test_send_test_webhook_prints_a_delivered_signed_event(receiver, endpoint, receiver_server):
    out = StringIO()
    call_command("send_test_webhook", "--endpoint", endpoint.name, stdout=out)
    text = out.getvalue()
    assert "HTTP 200" in text and "Delivered." in text
    request = receiver_server.requests[0]
    assert json.loads(request.body)["type"] == "webhook.test"
    assert receiver.verified == [request.headers["webhook-id"]]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_send_test_webhook_fails_with_one_line_and_never_retries(make_endpoint):
    make_endpoint(f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(CommandError, match="not delivered: Connection failed"):
        call_command("send_test_webhook", stdout=StringIO())
    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    assert not AutomationError.objects.exists()


def test_send_test_webhook_without_endpoint_explains_how_to_add_one(db):
    with pytest.raises(CommandError, match="LEAD_WEBHOOK_URL"):
        call_command("send_test_webhook", stdout=StringIO())
    WebhookEndpoint.objects.create(name="a", url="http://127.0.0.1:9/a")
    with pytest.raises(CommandError, match="No single endpoint"):
        call_command("send_test_webhook", "--endpoint", "nope", stdout=StringIO())


def test_worker_also_marks_idle_sessions_incomplete_once_a_minute():
    from sessions_app.models import ChatSession, CompletionStatus
    from sessions_app.tests.factories import ChatSessionFactory

    idle = ChatSessionFactory(last_activity_at=timezone.now() - timedelta(hours=1))
    worker = DeliveryWorker(name="sweeper")
    worker.run(once=True)
    assert ChatSession.objects.get(pk=idle.pk).completion_status == CompletionStatus.INCOMPLETE
    again = ChatSessionFactory(last_activity_at=timezone.now() - timedelta(hours=1))
    worker.run(once=True)  # within the minute: not swept again yet
    assert ChatSession.objects.get(pk=again.pk).completion_status == CompletionStatus.IN_PROGRESS


def _lead_link_answer(client, user, receiver_server) -> tuple[str, object]:
    url = receiver_server.requests[0].json()["data"]["session"]["url"]
    assert url.startswith(f"{django_settings.PUBLIC_BASE_URL}/")
    client.force_login(user)
    return url, client.get(url.removeprefix(django_settings.PUBLIC_BASE_URL))


def test_lead_link_opens_the_sessions_dashboard_page_for_a_signed_in_agent(
    client, agent_user, endpoint, receiver_server, captured_lead, worker
):
    session = captured_lead(name="Grace Hopper", email="grace@example.com")
    worker.run(once=True)
    url, response = _lead_link_answer(client, agent_user, receiver_server)
    assert str(session.public_id) in url
    assert response.status_code == 200
    assert response.context["session"] == session


@pytest.mark.urls("sessions_app.delivery.tests.urls_dashboard_moved")
def test_lead_link_follows_the_dashboard_wherever_it_is_mounted(
    client, agent_user, endpoint, receiver_server, captured_lead, worker
):
    # A hard-coded fallback path would still say /dashboard/... and answer 404 here.
    session = captured_lead()
    worker.run(once=True)
    url, response = _lead_link_answer(client, agent_user, receiver_server)
    assert url == f"{django_settings.PUBLIC_BASE_URL}/staff/board/sessions/{session.public_id}/"
    assert response.status_code == 200
