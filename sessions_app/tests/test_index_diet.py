"""The chatsession indexes the diet (0017_index_diet) dropped leave no query without one: the
queries they served are answered by the indexes that stay (PostgreSQL plans, with sequential
scans forbidden so that a query no index answers shows a Seq Scan and fails)."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from sessions_app.models import ChatSession, CompletionStatus
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def plan_of(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return json.dumps(plan if not isinstance(plan, str) else json.loads(plan))


def queryset_plan(queryset) -> str:
    sql, params = queryset.order_by().query.sql_with_params()
    return plan_of(sql, list(params))


@pytest.fixture(autouse=True)
def sessions():
    """Enough rows, analysed, for the planner to plan as on a real table: most sessions ended,
    a few in progress, each with its own email."""
    site = SiteFactory()
    statuses = [CompletionStatus.COMPLETE, CompletionStatus.INCOMPLETE] * 20 + [
        CompletionStatus.IN_PROGRESS
    ]
    ChatSession.objects.bulk_create(
        ChatSession(
            site=site,
            completion_status=statuses[n % len(statuses)],
            lead_email=f"person{n}@example.com",
        )
        for n in range(400)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ChatSession._meta.db_table}")


def test_the_idle_close_is_answered_by_the_completion_index():
    # sessions_close_idle's WHERE, as it runs it.
    idle = ChatSession.objects.filter(
        completion_status=CompletionStatus.IN_PROGRESS,
        last_activity_at__lt=timezone.now() - timedelta(minutes=30),
        deleted_at__isnull=True,
    )
    plan = queryset_plan(idle)
    assert "session_compl_started" in plan
    assert "Seq Scan" not in plan


def test_a_sites_sessions_are_found_without_the_foreign_key_index():
    plan = queryset_plan(ChatSession.objects.filter(site=SiteFactory()))
    assert "session_site_started" in plan
    assert "Seq Scan" not in plan


def test_an_erasure_by_email_uses_the_trigram_index():
    plan = queryset_plan(ChatSession.objects.filter(Q(lead_email__iexact="Ada@Example.com")))
    assert "qa_session_lead_email_trgm" in plan
    assert "Seq Scan" not in plan


def test_no_index_holds_a_column_every_message_writes_except_the_feeds_and_the_leads():
    """HOT updates need a message's UPDATE to change no indexed column. updated_at (the changes
    feed) and last_activity_at (in session_lead_key, the Leads page) are the two left: a new
    index on either, or on message_count, makes every message write into every index again."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
            [ChatSession._meta.db_table],
        )
        indexes = dict(cursor.fetchall())
    touching = {
        name
        for name, definition in indexes.items()
        if any(
            column in definition
            for column in ("updated_at", "last_activity_at", "message_count", "ai_replies_timed")
        )
    }
    assert touching == {"session_updated", "session_lead_key"}
    dropped = {"session_lead_email", "session_idle_candidates"}
    assert not dropped & set(indexes)
    # No single-column foreign key indexes left on site_id or the who-did-it columns.
    assert not [definition for definition in indexes.values() if "_by_id)" in definition]
    assert not [d for d in indexes.values() if d.endswith("USING btree (site_id)")]
