"""The QA Trends page: its figures on a known data set (qa/tests/trends_data.py), its date range,
who may open it, and a query count that does not grow with the sessions."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from qa.models import FailureCategory, QAHistory, Scorecard
from qa.tests.conftest import login
from qa.tests.trends_data import V1, V2, W1_START, Clock, build_story
from qa.trends import selectors
from qa.trends.selectors import DateRange, RangeError, parse_range
from sessions_app.models import ChatMessage, ChatSession, MessageRole, QAStatus
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

TRENDS = reverse("admin:sessions_app_chatsession_trends")
W1, W2 = date(2026, 11, 16), date(2026, 11, 23)
STORY_RANGE = DateRange(start=date(2026, 11, 16), end=date(2026, 11, 29))


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, datetime(2026, 11, 17, 9, 0, tzinfo=UTC))


@pytest.fixture
def story(clock, make_user):
    story = build_story(clock, make_user)
    clock.set(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    return story


def test_issue_rate_by_category_per_week(story):
    rates = selectors.issue_rates(STORY_RANGE)
    assert rates.weeks == [W1, W2]
    assert rates.reviewed_by_week == {W1: 3, W2: 3}
    assert rates.flagged_by_week == {W1: 2, W2: 1}
    assert (rates.reviewed, rates.flagged) == (6, 3)
    by_name = {row.name: row for row in rates.categories}
    assert by_name["Hallucination"].by_week == {W1: 2}
    assert by_name["Missed lead"].by_week == {W1: 1}
    assert by_name["Tone"].by_week == {W2: 1}
    # s10 was flagged "Policy" and then put in the trash: it counts nowhere.
    assert by_name["Policy"].total == 0
    assert selectors.percent(rates.rate) == "50%"
    assert selectors.percent(rates.week_rate(W1)) == "66.7%"


def test_issue_rate_by_agent_version(story):
    rows = selectors.issue_rates_by_version(STORY_RANGE)
    assert [(r.backend, r.model, r.config_hash, r.reviewed, r.flagged) for r in rows] == [
        (V1["agent_backend"], V1["agent_model"], V1["agent_config_hash"], 3, 2),
        (V2["agent_backend"], V2["agent_model"], V2["agent_config_hash"], 3, 1),
    ]
    assert rows[0].categories == {"Hallucination": 2, "Missed lead": 1}
    assert rows[1].categories == {"Tone": 1}
    assert rows[0].label == "scripted · rules-v1 · aaaa"


def test_lead_extraction_accuracy_from_the_verdicts(story):
    leads = selectors.lead_accuracy(STORY_RANGE)
    by_field = {f.name: f for f in leads.fields}
    assert (by_field["name"].judged, by_field["name"].verdicts["correct"]) == (2, 2)
    assert by_field["email"].verdicts == {
        "correct": 1,
        "wrong": 0,
        "missing": 0,
        "invented": 1,
    }
    assert by_field["phone"].verdicts["missing"] == 1
    assert by_field["need"].judged == 0
    assert (leads.judged, leads.correct) == (5, 3)
    assert selectors.percent(leads.accuracy) == "60%"
    assert leads.judged_by_week == {W1: 3, W2: 2}
    assert leads.correct_by_week == {W1: 2, W2: 1}


def test_time_from_issue_to_fixed_to_verified(story):
    cycles = selectors.fix_cycles(STORY_RANGE)
    assert (cycles.flagged, cycles.fixed, cycles.verified, cycles.reflagged) == (3, 2, 1, 0)
    assert (cycles.open_issues, cycles.awaiting_recheck) == (1, 1)
    assert sorted(cycles.to_fixed_hours) == [12.0, 24.0]
    assert cycles.median_to_fixed == 18.0
    assert cycles.median_to_verified == 6.0
    assert cycles.median_total == 30.0


def test_a_fix_flagged_again_ends_its_cycle_unverified(story, clock):
    from qa.scorecards.services import scorecard_issue_flag

    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    tone = FailureCategory.objects.get(name="Tone")
    scorecard_issue_flag(
        session=story.sessions["s7"], by=story.quinn, note="Still curt", category_ids=[tone.pk]
    )
    cycles = selectors.fix_cycles(STORY_RANGE)
    assert (cycles.flagged, cycles.fixed, cycles.verified, cycles.reflagged) == (4, 2, 1, 1)
    assert cycles.open_issues == 2


def test_reviewer_throughput_per_week(story):
    throughput = selectors.reviewer_throughput(STORY_RANGE)
    rows = {(r.name, tuple(sorted(r.by_week.items())), r.issues) for r in throughput.reviewers}
    # quinn: s1 passed, s2 flagged, s2 verified in week 1; s7 and s10 flagged in week 2 (a
    # decision made stays one, even on a session trashed since). ada only marked fixes.
    assert rows == {
        ("quinn", ((W1, 3), (W2, 2)), 3),
        ("rhea", ((W1, 1), (W2, 2)), 1),
    }
    assert [r.name for r in throughput.reviewers] == ["quinn", "rhea"]


def test_a_range_leaves_out_what_is_outside_it(story):
    week_two = DateRange(start=date(2026, 11, 23), end=date(2026, 11, 29))
    rates = selectors.issue_rates(week_two)
    assert (rates.reviewed, rates.flagged) == (3, 1)
    cycles = selectors.fix_cycles(week_two)
    # s2's cycle started in week 1; s7's is the only one flagged in week 2 (s10 is in the trash).
    assert (cycles.flagged, cycles.fixed, cycles.verified) == (1, 1, 0)


def test_trends_page_shows_the_figures(client, story):
    response = login(client, story.quinn).get(TRENDS, {"start": "2026-11-16", "end": "2026-11-29"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "QA trends" in html
    assert 'id="qa-trends-categories"' in html
    assert "66.7%" in html and "33.3%" in html  # the weeks' issue rates
    assert "scripted · rules-v1 · aaaa" in html
    assert "60%" in html  # lead accuracy
    assert "18.0 h" in html and "6.0 h" in html and "30.0 h" in html
    assert '<th scope="row">rhea</th>' in html
    assert "<meter" in html
    assert "cdn" not in html.lower()


def test_trends_page_is_open_to_admins(client, story):
    assert login(client, story.ada).get(TRENDS).status_code == 200


def test_trends_page_refuses_agents(client, agent_user):
    response = login(client, agent_user).get(TRENDS)
    # Agents never get into the admin: its login page, not the trends.
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_trends_page_refuses_staff_without_the_review_permission(client, make_user):
    user = make_user("agent", username="stan-staff")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    # The role stays agent: the staff flag alone gives no QA permission.
    response = login(client, user).get(TRENDS)
    assert response.status_code == 403


def test_trends_page_refuses_anonymous(client):
    response = client.get(TRENDS)
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("yesterday", "", "The start date must be written YYYY-MM-DD."),
        ("2026-11-20", "2026-11-10", "The start date is after the end date."),
        ("2020-01-01", "2026-11-29", "Choose a range of at most 366 days."),
        ("2026-11-01", "<script>", "The end date must be written YYYY-MM-DD."),
    ],
)
def test_a_bad_range_is_refused_with_a_message(qa_client, start, end, message):
    response = qa_client.get(TRENDS, {"start": start, "end": end})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "<script>" not in html


def test_parse_range_defaults_to_eight_weeks():
    period = parse_range(None, "", today=date(2026, 11, 30))
    assert period == DateRange(start=date(2026, 10, 12), end=date(2026, 11, 30))
    assert len(period.weeks()) == 8
    with pytest.raises(RangeError):
        parse_range("2026-13-01", None)


def _bulk_story(count: int, reviewer, category) -> None:
    """`count` reviewed sessions with AI replies, history rows and scorecards, in bulk."""
    site = SiteFactory.create()
    sessions = ChatSession.objects.bulk_create(
        ChatSession(
            site=site,
            started_at=W1_START + timedelta(minutes=i),
            last_activity_at=W1_START + timedelta(minutes=i),
            updated_at=W1_START,
            qa_status=QAStatus.ISSUE if i % 3 == 0 else QAStatus.PASSED,
            qa_status_at=W1_START + timedelta(hours=1),
            qa_status_by=reviewer,
        )
        for i in range(count)
    )
    ChatMessage.objects.bulk_create(
        ChatMessage(
            session=s,
            role=MessageRole.AI,
            text="hi",
            created_at=s.started_at,
            **(V1 if s.pk % 2 else V2),
        )
        for s in sessions
    )
    QAHistory.objects.bulk_create(
        QAHistory(
            session=s,
            from_status=QAStatus.UNCHECKED,
            to_status=s.qa_status,
            by=reviewer,
            at=s.qa_status_at or W1_START,
        )
        for s in sessions
    )
    cards = Scorecard.objects.bulk_create(
        Scorecard(session=s, reviewer=reviewer, name_verdict="correct")
        for s in sessions
        if s.qa_status == QAStatus.ISSUE
    )
    Scorecard.categories.through.objects.bulk_create(
        Scorecard.categories.through(scorecard=card, failurecategory=category) for card in cards
    )


def test_trends_page_queries_stay_flat_from_10_to_10000_sessions(client, qa_user):
    category = FailureCategory.objects.get_or_create(name="Tone")[0]
    client = login(client, qa_user)
    query = {"start": "2026-11-16", "end": "2026-11-29"}
    _bulk_story(10, qa_user, category)
    with CaptureQueriesContext(connection) as small:
        assert client.get(TRENDS, query).status_code == 200
    _bulk_story(9990, qa_user, category)
    with CaptureQueriesContext(connection) as large:
        response = client.get(TRENDS, query)
    assert response.status_code == 200
    assert "10000" in response.content.decode()  # the reviewed count of the range
    assert len(large.captured_queries) == len(small.captured_queries)
