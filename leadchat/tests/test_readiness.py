"""/health/ready and /metrics: every reason for "not ready", the figures, and the guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.services import api_token_issue
from leadchat.testing import free_port, subprocess_database_url
from leadchat.tests.test_health import _run_in_subprocess
from sessions_app.delivery import worker_heartbeat_beat
from sessions_app.models import Delivery, DeliveryKind, DeliveryStatus, WebhookEndpoint

ROOT = Path(__file__).resolve().parents[2]


def ready(client):
    response = client.get("/health/ready")
    return response.status_code, response.json()


def delivery(endpoint=None, **fields) -> Delivery:
    n = Delivery.objects.count()
    return Delivery.objects.create(
        event_id=f"evt-{n}",
        event_type="lead.captured",
        kind=DeliveryKind.WEBHOOK if endpoint else DeliveryKind.EMAIL,
        endpoint=endpoint,
        payload={},
        **fields,
    )


@pytest.mark.django_db
def test_ready_with_a_fresh_heartbeat_and_an_empty_outbox(client):
    worker_heartbeat_beat(name="w1")

    status, body = ready(client)

    assert status == 200, body
    assert body["status"] == "ok"
    assert body["reasons"] == []
    assert body["database"] == body["cache"] == "ok"
    assert body["queue_depth"] == 0
    assert body["worker_heartbeat_age_seconds"] < 5


@pytest.mark.django_db
def test_not_ready_when_no_worker_ever_beat(client):
    status, body = ready(client)

    assert status == 503
    assert body["reasons"] == ["no delivery worker has ever run (manage.py deliver_webhooks)"]


@pytest.mark.django_db
def test_not_ready_when_the_newest_heartbeat_is_over_two_minutes_old(client):
    now = timezone.now()
    worker_heartbeat_beat(name="old", now=now - timedelta(seconds=121))
    assert ready(client)[0] == 503
    assert "delivery worker silent for 121 s (limit 120 s)" in ready(client)[1]["reasons"]

    worker_heartbeat_beat(name="young", now=now - timedelta(seconds=100))  # another worker
    assert ready(client)[0] == 200


@pytest.mark.django_db
def test_not_ready_when_the_oldest_due_delivery_waits_too_long(client, settings):
    settings.READINESS_MAX_DUE_AGE_SECONDS = 600
    now = timezone.now()
    worker_heartbeat_beat(name="w1")
    active = WebhookEndpoint.objects.create(name="n8n", url="https://n8n.example/hook")
    disabled = WebhookEndpoint.objects.create(
        name="gone", url="https://gone.example/hook", is_active=False
    )
    delivery(active, next_attempt_at=now - timedelta(seconds=300))
    delivery(active, next_attempt_at=now + timedelta(hours=1))  # queued, not due
    delivery(disabled, next_attempt_at=now - timedelta(days=2))  # held, not overdue
    delivery(
        active,
        status=DeliveryStatus.SENDING,
        lease_until=now - timedelta(seconds=5),
        next_attempt_at=now,
    )
    delivered_at = now - timedelta(minutes=3)
    delivery(active, status=DeliveryStatus.DELIVERED, delivered_at=delivered_at)

    status, body = ready(client)
    assert status == 200, body
    assert body["queue_depth"] == 4
    assert body["due"] == 1
    assert 299 <= body["oldest_due_age_seconds"] < 310
    assert body["stuck_sending"] == 1
    assert body["held_for_disabled_endpoints"] == 1
    assert body["disabled_endpoints"] == 1
    assert body["last_delivered_at"] == delivered_at.isoformat()

    delivery(active, next_attempt_at=now - timedelta(seconds=700))
    status, body = ready(client)
    assert status == 503
    assert len(body["reasons"]) == 1
    assert body["reasons"][0].startswith("oldest due delivery waiting 70")


def test_not_ready_when_the_database_is_unreachable():
    code = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/health/ready');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = _run_in_subprocess(
        code,
        DEBUG="false",
        SECRET_KEY="x" * 50,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"]["database"] == "unavailable"
    assert outcome["body"]["reasons"] == ["database unreachable"]


# --- A real worker process beats into the database the web process reads -----------------------


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_process_makes_the_app_ready_and_a_stopped_one_does_not(client, settings):
    url = subprocess_database_url()
    if url is None:
        pytest.skip("a worker subprocess needs a database file or server")
    assert ready(client)[0] == 503
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks", "--no-close-idle", "--name", "beater"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "leadchat.settings_test",
            "DATABASE_URL": url,
            "DELIVERY_POLL_SECONDS": "0.1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ready(client)[0] != 200:
            time.sleep(0.2)
        status, body = ready(client)
        assert status == 200, body
    finally:
        worker.kill()
        worker.wait(10)
    # The worker is dead: two minutes later (a shorter limit here) the app says so.
    settings.READINESS_WORKER_MAX_AGE_SECONDS = 1
    time.sleep(1.5)
    status, body = ready(client)
    assert status == 503
    assert body["reasons"][0].startswith("delivery worker silent for")


# --- /metrics ------------------------------------------------------------------------------------


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


@pytest.mark.django_db
def test_metrics_show_the_readiness_figures(client, qa_user):
    worker_heartbeat_beat(name="w1")
    delivery(None, next_attempt_at=timezone.now() - timedelta(seconds=30))
    _row, token = api_token_issue(user=qa_user)

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert metric(text, "leadchat_ready") == 1.0
    assert metric(text, "leadchat_database_up") == 1.0
    assert metric(text, "leadchat_cache_up") == 1.0
    assert metric(text, "leadchat_outbox_queue_depth") == 1.0
    assert metric(text, "leadchat_outbox_due") == 1.0
    assert 29 <= metric(text, "leadchat_outbox_oldest_due_age_seconds") < 60
    assert metric(text, "leadchat_worker_heartbeat_age_seconds") < 5
    assert "leadchat_agent_bulkhead_rejected_total" in text
    assert "leadchat_cache_errors_total" in text or "leadchat_cache_errors" in text


@pytest.mark.django_db
def test_metrics_refuse_anonymous_and_non_staff_tokens(client, agent_user):
    assert client.get("/metrics").status_code in (401, 403)
    _row, token = api_token_issue(user=agent_user)  # agents are not staff
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token not-a-token").status_code in (401, 403)


@pytest.mark.django_db
def test_metrics_open_to_the_allowed_addresses_only(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.5", "192.168.7.0/24"]
    settings.TRUSTED_PROXY_COUNT = 0

    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.7.200").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.6").status_code == 403
    # A forged header does not get a client in (no proxy is trusted here).
    forged = client.get("/metrics", REMOTE_ADDR="10.0.0.6", HTTP_X_FORWARDED_FOR="10.0.0.5")
    assert forged.status_code == 403
