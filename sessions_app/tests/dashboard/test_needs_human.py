"""Visitors waiting for a person in the dashboard and the staff API: the flag through its service
and history, waiting sessions first in the list, their filter and count, with the query counts
of the plain list; and the new-lead email to LEAD_NOTIFY_EMAILS."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from sessions_app import services
from sessions_app.delivery.outbox import LEAD_NOTIFY_EMAIL_EVENT
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.errors import SessionDeleted
from sessions_app.history import session_history
from sessions_app.models import ChatSession, Delivery, LifecycleHistory
from sessions_app.tests.factories import ChatMessageFactory, ChatSessionFactory

LIST = reverse("staff-api:sessions")
CHANGES = reverse("staff-api:sessions-changes")
STATS = reverse("staff-api:stats")

pytestmark = pytest.mark.django_db


def started(minutes_ago: int, **fields) -> ChatSession:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return ChatSessionFactory.create(started_at=at, **fields)


def waiting(minutes_ago: int, **fields) -> ChatSession:
    session = started(minutes_ago, **fields)
    assert services.human_request(session=session)
    return session


# --- The service -------------------------------------------------------------------------------


def test_human_request_then_clear_writes_both_history_rows(agent_user):
    session = started(5)
    assert services.human_request(session=session)
    assert session.needs_human and session.human_requested_at is not None
    assert not services.human_request(session=session)  # one open request at a time
    assert services.human_request_clear(session=session, by=agent_user)
    assert not session.needs_human
    assert not services.human_request_clear(session=session, by=agent_user)  # nothing open
    entries = [(e.what, e.change, e.by) for e in session_history(session)]
    assert entries == [
        ("Request for a human", "Needs a human → No request", agent_user),
        ("Request for a human", "No request → Needs a human", None),
    ]
    assert LifecycleHistory.objects.filter(session=session).count() == 2


def test_a_session_in_the_trash_cannot_ask(agent_user):
    session = started(5)
    services.session_delete(session=session, by=agent_user)
    with pytest.raises(SessionDeleted):
        services.human_request(session=session)
    assert not ChatSession.objects.get(pk=session.pk).needs_human


def test_request_and_clear_bump_updated_at_for_the_changes_feed(agent_user):
    session = started(60)
    before = ChatSession.objects.get(pk=session.pk).updated_at
    services.human_request(session=session)
    requested = ChatSession.objects.get(pk=session.pk).updated_at
    assert requested > before
    services.human_request_clear(session=session, by=agent_user)
    assert ChatSession.objects.get(pk=session.pk).updated_at >= requested


# --- The list, its filter, the feed, the count --------------------------------------------------


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_waiting_sessions_come_first_in_any_order(api, agent_user):
    newest, old_waiting, newer_waiting, oldest = (
        started(1),
        waiting(50),
        waiting(30),
        started(90),
    )
    client = api(agent_user)
    expected_newest_first = [newer_waiting, old_waiting, newest, oldest]
    assert ids(client.get(LIST)) == [str(s.public_id) for s in expected_newest_first]
    oldest_first = [old_waiting, newer_waiting, oldest, newest]
    assert ids(client.get(LIST, {"ordering": "started_at"})) == [
        str(s.public_id) for s in oldest_first
    ]


def test_list_rows_say_who_waits_and_since_when(api, agent_user):
    session = waiting(10)
    [row] = api(agent_user).get(LIST).json()["results"]
    assert row["needs_human"] is True
    assert row["human_requested_at"] is not None
    assert row["id"] == str(session.public_id)


def test_needs_human_filter(api, agent_user):
    session = waiting(10)
    other = started(5)
    client = api(agent_user)
    assert ids(client.get(LIST, {"needs_human": "true"})) == [str(session.public_id)]
    assert ids(client.get(LIST, {"needs_human": "false"})) == [str(other.public_id)]


def test_needs_human_filter_refuses_a_bad_value(api, agent_user):
    response = api(agent_user).get(LIST, {"needs_human": "maybe"})
    assert response.status_code == 400
    assert "needs_human" in response.json()["fields"]


def test_the_changes_feed_carries_the_request(api, agent_user):
    client = api(agent_user)
    cursor = client.get(CHANGES).json()["cursor"]
    session = waiting(10)
    rows = client.get(CHANGES, {"since": cursor, "needs_human": "true"}).json()["results"]
    [row] = [r for r in rows if r["id"] == str(session.public_id)]
    assert row["needs_human"] is True and row["matches"] is True


def count_queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries.captured_queries)


def test_waiting_first_and_the_filter_cost_no_extra_query(api, agent_user):
    client = api(agent_user)
    for minutes in range(3):
        ChatMessageFactory(session=waiting(minutes + 10))
        ChatMessageFactory(session=started(minutes))
    client.get(LIST)
    plain = count_queries(client, LIST, {"has_lead": "false"})
    assert count_queries(client, LIST, {"needs_human": "true"}) == plain
    for minutes in range(20):
        waiting(minutes + 100)
    assert count_queries(client, LIST, {"needs_human": "true", "page_size": 50}) == plain


def test_stats_count_waiting_sessions_with_the_same_queries(api, agent_user):
    client = api(agent_user)
    started(5)
    client.get(STATS)
    before = count_queries(client, STATS, {})
    waiting(10)
    waiting(20)
    answered = waiting(30)
    services.human_request_clear(session=answered, by=agent_user)
    assert client.get(STATS).json()["totals"]["needs_human"] == 2
    assert count_queries(client, STATS, {}) == before


def test_the_overview_has_the_waiting_card_and_the_sessions_page_its_filter(client, agent_user):
    client.force_login(agent_user)
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-kpi="needs_human"' in overview
    assert "?needs_human=true" in overview
    assert 'id="notify-permission"' in overview and "dashboard/notify" in overview
    sessions = client.get(reverse("dashboard:sessions")).content.decode()
    assert 'name="needs_human"' in sessions


def test_the_session_page_shows_the_request(client, agent_user):
    session = waiting(10)
    client.force_login(agent_user)
    page = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert "data-needs-human" in page and "Needs a human" in page
    quiet = started(5)
    page = client.get(reverse("dashboard:session", args=[quiet.public_id])).content.decode()
    assert "data-needs-human" not in page


# --- The new-lead email -----------------------------------------------------------------------


def lead_emails():
    return Delivery.objects.filter(event_type=LEAD_NOTIFY_EMAIL_EVENT)


def test_every_new_lead_is_emailed_to_lead_notify_emails(settings, mailoutbox):
    settings.LEAD_NOTIFY_EMAILS = ["sales@example.com", "boss@example.com"]
    settings.PUBLIC_BASE_URL = "https://leadchat.example.com"
    session = started(5, page_url="https://landing.example.com/pricing?x=<y>")
    services.lead_capture(session=session, name="Ana <i>Silva</i>", email="ana@example.com")
    services.lead_capture(session=session, phone="+34 600 000 000")  # not a new lead
    [delivery] = lead_emails()
    assert delivery.payload["to"] == ["sales@example.com", "boss@example.com"]
    assert delivery.subject_email == "ana@example.com"

    DeliveryWorker(name="w1", close_idle_sessions=False).run_batch()
    [email] = mailoutbox
    assert email.subject == "[leadchat] New lead: Ana <i>Silva</i>"
    assert "ana@example.com" in email.body
    assert "https://landing.example.com/pricing?x=<y>" in email.body
    assert f"https://leadchat.example.com/dashboard/sessions/{session.public_id}/" in email.body
    html = email.alternatives[0][0]
    assert "Ana &lt;i&gt;Silva&lt;/i&gt;" in html and "<i>Silva</i>" not in html
    assert "pricing?x=&lt;y&gt;" in html


def test_no_lead_email_without_lead_notify_emails(settings):
    settings.LEAD_NOTIFY_EMAILS = []
    session = started(5)
    services.lead_capture(session=session, name="Ana", email="ana@example.com")
    assert session.has_lead
    assert not lead_emails().exists()


# --- Dismissing a request -----------------------------------------------------------------------


def dismiss_url(session) -> str:
    return reverse("staff-api:session-human-dismiss", args=[session.public_id])


def test_an_agent_dismisses_a_request(api, agent_user):
    session = waiting(10)
    response = api(agent_user).post(dismiss_url(session))
    assert response.status_code == 200, response.content
    assert response.json()["needs_human"] is False
    row = LifecycleHistory.objects.filter(session=session).first()
    assert (row.to_status, row.by) == ("none", agent_user)


def test_dismissing_twice_is_a_conflict_naming_why(api, agent_user):
    session = waiting(10)
    client = api(agent_user)
    client.post(dismiss_url(session))
    response = client.post(dismiss_url(session))
    assert response.status_code == 409
    assert "no open request" in response.json()["error"]
    assert LifecycleHistory.objects.filter(session=session).count() == 2


def test_qa_reviewers_and_strangers_cannot_dismiss(api, make_user):
    session = waiting(10)
    assert api(make_user("qa", username="quinn")).post(dismiss_url(session)).status_code == 403
    assert api().post(dismiss_url(session)).status_code == 401
    assert ChatSession.objects.get(pk=session.pk).needs_human


def test_dismissing_an_unknown_session_is_404(api, agent_user):
    missing = reverse(
        "staff-api:session-human-dismiss", args=["00000000-0000-4000-8000-000000000000"]
    )
    assert api(agent_user).post(missing).status_code == 404
