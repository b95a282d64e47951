"""Scorecards at scale on PostgreSQL: the change view, the changelist (with its summary line)
and the export make as many queries at 10 sessions as at 10,000, scorecards and annotations
included."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from qa import paginator as paginator_module
from qa.models import CriterionScore, MessageAnnotation, Scorecard
from qa.scorecards.models import LeadVerdict
from sessions_app.models import ChatMessage, ChatSession, MessageRole, QAStatus

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")


def add_reviewed_sessions(site, count: int, *, reviewers, criteria, categories) -> list:
    """`count` sessions, each with 2 messages, every reviewer's scorecard and an annotation."""
    now = timezone.now()
    sessions = ChatSession.objects.bulk_create(
        ChatSession(
            site=site,
            started_at=now - timedelta(seconds=i),
            last_activity_at=now,
            updated_at=now,
            lead_name=f"Lead {i}",
            lead_email=f"lead{i}@example.com",
            message_count=2,
            qa_status=(QAStatus.UNCHECKED, QAStatus.PASSED, QAStatus.ISSUE)[i % 3],
        )
        for i in range(count)
    )
    messages = ChatMessage.objects.bulk_create(
        ChatMessage(session=s, role=role, text=f"{role} says {s.pk}")
        for s in sessions
        for role in (MessageRole.VISITOR, MessageRole.AI)
    )
    cards = Scorecard.objects.bulk_create(
        Scorecard(
            session=s,
            reviewer=reviewer,
            name_verdict=LeadVerdict.CORRECT,
            email_verdict=LeadVerdict.INVENTED,
        )
        for s in sessions
        for reviewer in reviewers
    )
    CriterionScore.objects.bulk_create(
        CriterionScore(scorecard=card, criterion=criterion, value=1)
        for card in cards
        for criterion in criteria
    )
    Through = Scorecard.categories.through
    Through.objects.bulk_create(
        Through(scorecard_id=card.pk, failurecategory_id=category.pk)
        for card in cards
        for category in categories
    )
    MessageAnnotation.objects.bulk_create(
        MessageAnnotation(session=m.session, message=m, note="n", by=reviewers[0])
        for m in messages
        if m.role == MessageRole.AI
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return sessions


def count_queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
        assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def setup(site, qa_user, make_user, tone, accurate, hallucination, missed_lead):
    return {
        "reviewers": [qa_user, make_user("qa", username="sam-qa")],
        "criteria": [tone, accurate],
        "categories": [hallucination, missed_lead],
    }


def test_change_view_and_changelist_queries_flat_from_10_to_10000_sessions(
    qa_client, site, setup, monkeypatch, django_assert_max_num_queries
):
    # Both sizes past the paginator's exact-count cap, so both pages estimate the same way
    # (past it, the paginator asks the planner: one query more, whatever the scorecards).
    monkeypatch.setattr(paginator_module, "EXACT_COUNT_LIMIT", 5)
    small = add_reviewed_sessions(site, 10, **setup)
    target = small[4]
    change = reverse("admin:sessions_app_chatsession_change", args=[target.pk])
    qa_client.get(change)  # warm the process-wide ContentType cache
    qa_client.get(CHANGELIST)
    change_few = count_queries(qa_client, change)
    list_few = count_queries(qa_client, CHANGELIST, {"qa_status": "all"})

    add_reviewed_sessions(site, 10_000, **setup)
    with django_assert_max_num_queries(change_few):
        count_queries(qa_client, change)
    with django_assert_max_num_queries(list_few):
        count_queries(qa_client, CHANGELIST, {"qa_status": "all"})
    # The summary read the big table right: 2 of every 3 sessions reviewed, 1 of 3 passed.
    summary = qa_client.get(CHANGELIST).context["qa_summary"]
    assert (summary.reviewed, summary.passed) == (6_672, 3_336)
    assert (summary.judged_fields, summary.correct_fields) == (40_040, 20_020)
    # The page's bound without scorecards was 10 (qa/tests/test_scale.py); these add 6 at most.
    # 16, the claim's read and renewal (qa.claims), the History box's replays (qa.history).
    assert change_few <= 19
    assert list_few <= 12
