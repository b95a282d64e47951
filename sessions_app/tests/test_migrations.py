"""Data migrations, run forwards against rows written by the schema before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from sessions_app.leads import lead_key

BEFORE = [("sessions_app", "0002_outbox_webhooks_emails")]
AFTER = [("sessions_app", "0003_session_ai_latency_counters")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator(transactional_db):
    yield migrate
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_latency_counters_are_backfilled_from_the_stored_replies(migrator):
    apps = migrator(BEFORE)
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    ChatMessage = apps.get_model("sessions_app", "ChatMessage")
    now = timezone.now()
    timed, untimed = ChatSession.objects.create(), ChatSession.objects.create()
    for session, role, metadata in [
        (timed, "ai", {"latency_ms": 100}),
        (timed, "ai", {"latency_ms": "250.5"}),
        (timed, "ai", {"latency_ms": True}),
        (timed, "ai", {"latency_ms": "slow"}),
        (timed, "ai", {"backend": "scripted"}),
        (timed, "visitor", {"latency_ms": 9999}),
        (untimed, "ai", {"latency_ms": -3}),
    ]:
        ChatMessage.objects.create(
            session=session, role=role, text="x", metadata=metadata, created_at=now
        )

    apps = migrator(AFTER)
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    counters = dict(ChatSession.objects.values_list("pk", "ai_replies_timed"))
    totals = dict(ChatSession.objects.values_list("pk", "ai_latency_ms_total"))
    assert counters == {timed.pk: 2, untimed.pk: 0}
    assert totals == {timed.pk: 350.5, untimed.pk: 0.0}


def test_ai_usage_counters_are_backfilled_from_the_stored_replies(migrator):
    apps = migrator([("sessions_app", "0005_delivery_faults")])
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    ChatMessage = apps.get_model("sessions_app", "ChatMessage")
    now = timezone.now()
    paid, scripted = ChatSession.objects.create(), ChatSession.objects.create()
    for session, role, metadata in [
        (paid, "ai", {"backend": "openai", "tokens": {"total": 120}}),
        (paid, "ai", {"backend": "openai", "tokens": {"total": 30}, "fallback": True}),
        (paid, "ai", {"backend": "n8n", "tokens": None}),
        (paid, "ai", {"backend": "openai", "kind": "greeting"}),  # no call
        (paid, "ai", {"backend": "openai", "kind": "lead_invalid"}),  # no call
        (paid, "ai", {"backend": "openai", "tokens": {"total": "lots"}}),  # a call, no tokens
        (scripted, "ai", {"backend": "scripted", "step": "name"}),
        (scripted, "visitor", {"backend": "openai", "tokens": {"total": 999}}),
    ]:
        ChatMessage.objects.create(
            session=session, role=role, text="x", metadata=metadata, created_at=now
        )

    apps = migrator([("sessions_app", "0006_session_ai_tokens")])
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    usage = {
        pk: (calls, tokens)
        for pk, calls, tokens in ChatSession.objects.values_list("pk", "ai_calls", "ai_tokens")
    }
    assert usage == {paid.pk: (4, 150), scripted.pk: (0, 0)}


def test_attempts_from_before_are_finished_and_the_schedule_resumes(migrator):
    """Attempt rows written before 0005 had no finished_at: they must not read as interrupted
    sends (each would count as a crash), and a row's retry clock resumes from its attempts."""
    apps = migrator([("sessions_app", "0004_session_lead_captured_index")])
    Delivery = apps.get_model("sessions_app", "Delivery")
    DeliveryAttempt = apps.get_model("sessions_app", "DeliveryAttempt")
    retried = Delivery.objects.create(
        event_id="evt_a", event_type="lead.captured", kind="email", payload={}, attempts=2
    )
    fresh = Delivery.objects.create(
        event_id="evt_b", event_type="lead.captured", kind="email", payload={}
    )
    for number in (1, 2):
        DeliveryAttempt.objects.create(delivery=retried, number=number, status_code=500)

    apps = migrator([("sessions_app", "0005_delivery_faults")])
    Delivery = apps.get_model("sessions_app", "Delivery")
    DeliveryAttempt = apps.get_model("sessions_app", "DeliveryAttempt")
    assert not DeliveryAttempt.objects.filter(finished_at__isnull=True).exists()
    rows = {row.event_id: row for row in Delivery.objects.all()}
    assert (rows["evt_a"].schedule_step, rows["evt_a"].crashes) == (2, 0)
    assert rows["evt_a"].window_started_at == rows["evt_a"].created_at
    assert (rows["evt_b"].pk, rows["evt_b"].schedule_step) == (fresh.pk, 0)
    assert rows["evt_b"].window_started_at is None


def test_lead_keys_are_filled_for_stored_leads(migrator):
    apps = migrator([("sessions_app", "0010_messenger_delivery")])
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    mixed = ChatSession.objects.create(lead_email=" Bob@Example.com ")
    lower = ChatSession.objects.create(lead_email="bob@example.com")
    other = ChatSession.objects.create(lead_email="ann@example.com")
    anonymous = ChatSession.objects.create()

    apps = migrator([("sessions_app", "0013_lead_key")])
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    keys = dict(ChatSession.objects.values_list("pk", "lead_key"))
    assert keys[mixed.pk] == keys[lower.pk] == lead_key("bob@example.com")
    assert keys[other.pk] == lead_key("ann@example.com") != keys[lower.pk]
    assert keys[anonymous.pk] == ""
    assert len(keys[lower.pk]) == 64
