"""The console at a few thousand sessions on PostgreSQL: bounded queries, no full counts, indexed
search. (The benchmark at 100k sessions / 1M messages is bench work, not a timed test.)"""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from qa import paginator as paginator_module
from qa import selectors
from qa.paginator import EstimatedCountPaginator
from sessions_app.models import AutomationError, ChatMessage, ChatSession, MessageRole
from sessions_app.selectors import SessionFilters, sessions_filter, sessions_search
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")
SESSIONS = 3000
MESSAGES_PER_SESSION = 3


def add_sessions(site, count: int, *, messages: int = MESSAGES_PER_SESSION) -> list[ChatSession]:
    now = timezone.now()
    sessions = ChatSession.objects.bulk_create(
        ChatSession(
            site=site,
            started_at=now - timedelta(minutes=i),
            last_activity_at=now - timedelta(minutes=i),
            updated_at=now,
            lead_name=f"Lead {i}",
            lead_email=f"lead{i}@example.com",
            message_count=messages,
            qa_status=("unchecked", "passed", "issue", "fixed")[i % 4],
        )
        for i in range(count)
    )
    ChatMessage.objects.bulk_create(
        ChatMessage(
            session=session,
            role=MessageRole.VISITOR if j % 2 else MessageRole.AI,
            text=f"message {j} of session {session.pk}: asking about plan {session.pk % 97}",
            metadata={"backend": "scripted", "latency_ms": 12},
        )
        for session in sessions
        for j in range(messages)
    )
    AutomationError.objects.bulk_create(
        AutomationError(message="timeout", workflow="Lead intake", session=session)
        for session in sessions[::10]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE sessions_app_chatsession; ANALYZE sessions_app_chatmessage; "
            "ANALYZE sessions_app_automationerror"
        )
    return sessions


def count_queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


PAGES = [
    {},
    {"qa_status": "all", "archive": "all"},
    {"qa_status": "issue", "completion_status__exact": "in_progress"},
    {"has_errors": "yes"},
    {"q": "lead1"},
    {"qa_status": "all", "p": "3"},
]


@pytest.mark.parametrize("params", PAGES)
def test_changelist_queries_do_not_grow_with_the_data(
    qa_client, site, params, django_assert_max_num_queries
):
    add_sessions(site, 20)
    # Warm the process-wide caches (ContentType lookups): only per-request queries compare.
    qa_client.get(CHANGELIST, params)
    small = count_queries(qa_client, CHANGELIST, params)
    add_sessions(site, SESSIONS)
    with django_assert_max_num_queries(10):
        large = count_queries(qa_client, CHANGELIST, params)
    assert large == small


def test_change_view_queries_do_not_grow_with_the_transcript(
    qa_client, site, django_assert_max_num_queries
):
    short = add_sessions(site, 1, messages=2)[0]
    long = add_sessions(site, 1, messages=1500)[0]
    add_sessions(site, SESSIONS)
    short_url = reverse("admin:sessions_app_chatsession_change", args=[short.pk])
    long_url = reverse("admin:sessions_app_chatsession_change", args=[long.pk])
    qa_client.get(short_url)  # warm the process-wide ContentType cache
    qa_client.get(long_url)  # the first opening claims; both are renewals from here on
    small = count_queries(qa_client, short_url)
    # 10 before scorecards, which add 4 fixed queries here (criteria, categories, scorecards,
    # annotations; see qa.scorecards.console), the claim's read and renewal 2, and the History
    # box's replays 1 (qa.history.qa_replay_sampling_entries).
    with django_assert_max_num_queries(17):
        large = count_queries(qa_client, long_url)
    assert large == small
    html = qa_client.get(long_url).content.decode()
    assert f"Showing the first {selectors.TRANSCRIPT_LIMIT} of 1500 messages." in html


def test_changelist_never_counts_the_whole_table(qa_client, site, monkeypatch):
    monkeypatch.setattr(paginator_module, "EXACT_COUNT_LIMIT", 500)
    add_sessions(site, SESSIONS)
    with CaptureQueriesContext(connection) as ctx:
        response = qa_client.get(CHANGELIST, {"qa_status": "all", "archive": "all"})
    # The summary line's lead accuracy counts scorecards (qa.scorecards.selectors.qa_summary):
    # rows people wrote, which grow with the QA team's work, not with the sessions listed.
    counts = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith("SELECT COUNT(") and not q["sql"].startswith('SELECT COUNT("qa_')
    ]
    # Every count is capped with a LIMIT; beyond the cap the planner estimates.
    assert counts
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    cl = response.context["cl"]
    assert cl.paginator.estimated
    assert 500 < cl.result_count < SESSIONS * 3
    assert b"about " in response.content


def test_unfiltered_count_reads_the_planner_statistics(site, monkeypatch):
    monkeypatch.setattr(paginator_module, "EXACT_COUNT_LIMIT", 500)
    add_sessions(site, SESSIONS)
    with CaptureQueriesContext(connection) as ctx:
        count = EstimatedCountPaginator(ChatSession.objects.order_by("-started_at"), 50).count
    assert abs(count - SESSIONS) < SESSIONS * 0.2
    assert [q["sql"] for q in ctx.captured_queries if "pg_class" in q["sql"]]
    assert not [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_small_filtered_lists_are_counted_exactly(site):
    add_sessions(site, 40)
    paginator = EstimatedCountPaginator(ChatSession.objects.filter(qa_status="issue"), 50)
    assert paginator.count == 10
    assert not paginator.estimated


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Forbid sequential scans: if no index can answer the search, the plan still shows a
        # Seq Scan (at a huge cost), and this test fails.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return json.dumps(plan if not isinstance(plan, str) else json.loads(plan))


def test_search_uses_the_trigram_indexes_not_a_scan_of_messages(site):
    add_sessions(site, 300)
    plan = plan_of(sessions_search(selectors.console_sessions(), "plan 42"))
    assert "qa_message_text_trgm" in plan
    assert "qa_session_lead_name_trgm" in plan
    assert "qa_session_lead_email_trgm" in plan
    assert "Seq Scan" not in plan


def test_staff_api_search_uses_the_trigram_indexes_for_every_word(site):
    # The staff API, the dashboard and the exports search through the console's selector.
    add_sessions(site, 300)
    plan = plan_of(sessions_filter(SessionFilters(search="plan 42"))[:25])
    indexes = ["qa_message_text_trgm", "qa_session_lead_name_trgm", "qa_session_lead_email_trgm"]
    assert [plan.count(f'"{index}"') for index in indexes] == [2, 2, 2]  # one UNION per word
    assert "Seq Scan" not in plan


def test_search_results_are_correct_at_scale(qa_client, site):
    sessions = add_sessions(site, 500)
    target = sessions[123]
    response = qa_client.get(CHANGELIST, {"qa_status": "all", "q": f"session {target.pk}:"})
    assert [s.pk for s in response.context["cl"].result_list] == [target.pk]


def test_review_next_is_a_keyset_lookup(qa_client, site, django_assert_max_num_queries):
    add_sessions(site, SESSIONS)
    current = ChatSessionFactory(
        site=site, started_at=timezone.now() - timedelta(minutes=5, seconds=30)
    )
    url = reverse("admin:sessions_app_chatsession_change", args=[current.pk])
    # 20, and the claim of the next session (lock, claim row, history row) before the redirect,
    # and scorecards' reads of the submit.
    with django_assert_max_num_queries(28):
        response = qa_client.post(url, {"qa_action": "passed+next"})
    assert response.status_code == 302
    expected = (
        ChatSession.objects.filter(qa_status="unchecked", started_at__lt=current.started_at)
        .order_by("-started_at", "-id")
        .first()
    )
    assert response["Location"].startswith(
        reverse("admin:sessions_app_chatsession_change", args=[expected.pk])
    )
