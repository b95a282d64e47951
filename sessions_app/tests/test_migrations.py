"""Data migrations, run forwards against rows written by the schema before them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

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
