"""QA as a team (issue 15, "Working as a team"): review next per list, claims, assignment, My
queue, stale pages, reopen on new turns, fixed needs feedback, and the emails around them."""

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from qa import claims, services
from qa.models import QAHistory, ReviewClaim
from qa.tests.conftest import login
from sessions_app.delivery.models import Delivery, DeliveryKind
from sessions_app.models import ChatMessage, ChatSession, MessageRole, QAStatus
from sessions_app.services import message_add
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")


def change_url(session: ChatSession, **query: str) -> str:
    url = reverse("admin:sessions_app_chatsession_change", args=[session.pk])
    return f"{url}?{urlencode(query)}" if query else url


def admin_url(name: str, session: ChatSession, **query: str) -> str:
    url = reverse(f"admin:sessions_app_chatsession_{name}", args=[session.pk])
    return f"{url}?{urlencode(query)}" if query else url


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def path_of(response) -> str:
    return urlsplit(response["Location"]).path


def queue(count: int, **fields) -> list[ChatSession]:
    """`count` sessions, newest first, a minute apart."""
    now = timezone.now()
    return [
        ChatSessionFactory.create(started_at=now - timedelta(minutes=i), **fields)
        for i in range(count)
    ]


@pytest.fixture
def other_qa(make_user):
    return make_user("qa", username="olga-qa")


@pytest.fixture
def other_client(other_qa):
    return login(Client(), other_qa)


# --- review next follows the list it came from ---------------------------------------------------


def test_review_next_from_the_issue_list_opens_the_next_issue(admin_client_role):
    newer_issue, unchecked, older_issue = (
        ChatSessionFactory(
            started_at=timezone.now() - timedelta(minutes=i),
            qa_status=status,
            dev_feedback="Prompt changed" if status == QAStatus.ISSUE else "",
        )
        for i, status in enumerate([QAStatus.ISSUE, QAStatus.UNCHECKED, QAStatus.ISSUE])
    )
    filters = urlencode({"qa_status": "issue"})
    response = admin_client_role.post(
        admin_url("review", newer_issue, _changelist_filters=filters),
        {"qa_action": "fixed+next", "dev_feedback": "Prompt changed for this one"},
    )
    assert path_of(response) == change_url(older_issue)
    assert parse_qs(urlsplit(response["Location"]).query)["_changelist_filters"] == [filters]
    newer_issue.refresh_from_db()
    assert newer_issue.qa_status == QAStatus.FIXED
    # The last issue fixed: the issue list is clear, though an unchecked session is left.
    response = admin_client_role.post(
        admin_url("review", older_issue, _changelist_filters=filters),
        {"qa_action": "fixed+next", "dev_feedback": "Also changed"},
    )
    assert path_of(response) == CHANGELIST
    assert any(t.startswith("Queue clear") for t in texts(response))
    unchecked.refresh_from_db()
    assert unchecked.qa_status == QAStatus.UNCHECKED


def test_review_next_from_the_fixed_list_opens_the_next_fixed(qa_client):
    first, second = queue(2, qa_status=QAStatus.FIXED)
    ChatSessionFactory(qa_status=QAStatus.UNCHECKED)  # not in the list: never next
    filters = urlencode({"qa_status": "fixed"})
    response = qa_client.post(
        admin_url("review", first, _changelist_filters=filters), {"qa_action": "passed+next"}
    )
    assert path_of(response) == change_url(second)


def test_review_next_with_all_statuses_goes_to_the_next_row_whatever_its_status(qa_client):
    first, passed, issue = queue(3)
    ChatSession.objects.filter(pk=passed.pk).update(qa_status=QAStatus.PASSED)
    ChatSession.objects.filter(pk=issue.pk).update(qa_status=QAStatus.ISSUE)
    filters = urlencode({"qa_status": "all"})
    response = qa_client.post(
        admin_url("review", first, _changelist_filters=filters), {"qa_action": "passed+next"}
    )
    assert path_of(response) == change_url(passed)


def test_review_next_skips_a_session_someone_else_claimed(qa_client, qa_user, other_qa):
    first, claimed, free = queue(3)
    claims.qa_claim(session=claimed, by=other_qa)
    response = qa_client.post(admin_url("review", first), {"qa_action": "passed+next"})
    assert path_of(response) == change_url(free)
    # ... and claims the one it opens before the redirect.
    assert ReviewClaim.objects.get(session=free).claimed_by == qa_user


def test_queue_clear_only_when_the_list_has_no_other_session(qa_client, other_qa):
    first, claimed = queue(2)
    claims.qa_claim(session=claimed, by=other_qa)
    response = qa_client.post(admin_url("review", first), {"qa_action": "passed+next"})
    assert path_of(response) == CHANGELIST
    assert any(t.startswith("Queue clear") for t in texts(response))


def test_next_and_previous_links_move_through_the_list_without_deciding(qa_client):
    newest, middle, oldest = queue(3)
    assert path_of(qa_client.get(admin_url("next", middle))) == change_url(oldest)
    assert path_of(qa_client.get(admin_url("previous", middle))) == change_url(newest)
    # Previous stops at the top of the list; next wraps to it.
    response = qa_client.get(admin_url("previous", newest))
    assert path_of(response) == change_url(newest)
    assert "This is the first session of the list." in texts(response)
    assert path_of(qa_client.get(admin_url("next", oldest))) == change_url(newest)
    assert all(s.qa_status == QAStatus.UNCHECKED for s in ChatSession.objects.all())


def test_next_follows_an_oldest_first_order(qa_client):
    newest, middle, _oldest = queue(3)
    # The "Started" column sorted ascending (o=1): next from the middle is the newer one.
    filters = urlencode({"o": "1"})
    response = qa_client.get(admin_url("next", middle, _changelist_filters=filters))
    assert path_of(response) == change_url(newest)


# --- claims --------------------------------------------------------------------------------------


def test_opening_a_session_claims_it_and_others_see_who_reviews_it(
    qa_client, other_client, qa_user
):
    session = ChatSessionFactory()
    qa_client.get(change_url(session))
    claim = ReviewClaim.objects.get(session=session)
    assert claim.claimed_by == qa_user
    assert claim.claimed_until > timezone.now() + timedelta(minutes=9)

    html = other_client.get(change_url(session)).content.decode()
    until = claims.clock(claim.claimed_until)
    assert f"Being reviewed by quinn-qa (until {until})." in html
    assert 'value="passed+next"' not in html  # no decision buttons for the others
    assert ReviewClaim.objects.get(session=session).claimed_by == qa_user  # not taken over


def test_a_decision_on_a_session_claimed_by_someone_else_is_refused(
    qa_client, other_client, other_qa
):
    session = ChatSessionFactory()
    claims.qa_claim(session=session, by=other_qa)
    response = qa_client.post(admin_url("review", session), {"qa_action": "passed"})
    assert response.status_code == 200
    assert any(t.startswith("Being reviewed by olga-qa (until ") for t in texts(response))
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
    assert not QAHistory.objects.filter(kind=QAHistory.Kind.MOVE).exists()
    # The bulk action meets the same refusal.
    response = qa_client.post(
        CHANGELIST, {"action": "mark_passed", ACTION_CHECKBOX_NAME: [session.pk], "index": 0}
    )
    refusal = "1 session not marked passed: Being reviewed by olga-qa"
    assert any(refusal in t for t in texts(response))
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED


def test_the_page_shown_after_a_decision_leaves_the_session_free(qa_client, other_client):
    # The decision ends the decider's claim; the page it shows again must not take it back
    # (a developer's "Mark fixed" kept the session from QA's re-check while the page stayed open).
    session = ChatSessionFactory()
    qa_client.get(change_url(session))
    response = qa_client.post(admin_url("review", session), {"qa_action": "passed"}, follow=True)
    assert "Session marked passed." in texts(response)
    assert "You are reviewing this session" not in response.content.decode()
    assert claims.live_holder(ReviewClaim.objects.get(session=session), timezone.now()) is None
    # The next reviewer to open it gets it at once.
    assert (
        "You are reviewing this session" in other_client.get(change_url(session)).content.decode()
    )


def test_a_claim_runs_out_after_ten_minutes_and_another_reviewer_takes_it(qa_user, other_qa):
    session = ChatSessionFactory()
    opened = timezone.now() - timedelta(minutes=11)
    claims.qa_claim(session=session, by=other_qa, now=opened)
    with pytest.raises(claims.ClaimHeld):
        claims.qa_claim(session=session, by=qa_user, now=opened + timedelta(minutes=9, seconds=59))
    until = claims.qa_claim(session=session, by=qa_user, now=opened + timedelta(minutes=10))
    assert ReviewClaim.objects.get(session=session).claimed_by == qa_user
    assert until == opened + timedelta(minutes=20)
    # The run-out claim no longer stops a decision (now is 11 minutes after it was taken).
    services.qa_mark_passed(session=session, by=qa_user)
    assert [r.by for r in QAHistory.objects.filter(kind=QAHistory.Kind.CLAIM)] == [
        qa_user,
        other_qa,
    ]


def test_a_renewal_extends_the_claim_without_a_history_row(qa_user):
    session = ChatSessionFactory()
    start = timezone.now()
    claims.qa_claim(session=session, by=qa_user, now=start)
    renewed = claims.qa_claim(session=session, by=qa_user, now=start + timedelta(minutes=8))
    assert renewed == start + timedelta(minutes=18)
    assert ReviewClaim.objects.get(session=session).claimed_until == renewed
    assert QAHistory.objects.filter(kind=QAHistory.Kind.CLAIM).count() == 1


def test_heartbeat_renews_the_readers_claim(qa_user):
    session = ChatSessionFactory()
    browser = login(Client(enforce_csrf_checks=True), qa_user)
    browser.get(change_url(session))
    before = ReviewClaim.objects.get(session=session).claimed_until
    token = browser.cookies["csrftoken"].value
    response = browser.post(admin_url("claim", session), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["claimed"] is True
    assert ReviewClaim.objects.get(session=session).claimed_until > before


def test_heartbeat_needs_csrf_a_reviewer_and_a_post(qa_user, client, other_qa):
    session = ChatSessionFactory()
    browser = login(Client(enforce_csrf_checks=True), qa_user)
    assert browser.post(admin_url("claim", session)).status_code == 403  # no CSRF token
    assert not ReviewClaim.objects.exists()
    assert browser.get(admin_url("claim", session)).status_code == 405
    # Signed out: the login page, nothing claimed.
    assert client.post(admin_url("claim", session)).status_code == 302
    assert not ReviewClaim.objects.exists()
    # Someone else holds it: 409 with who and until when.
    claims.qa_claim(session=session, by=other_qa)
    login(client, qa_user)
    response = client.post(admin_url("claim", session))
    assert response.status_code == 409
    assert response.json()["message"].startswith("Being reviewed by olga-qa")


def test_heartbeat_is_refused_to_a_reader_who_may_not_review(client, make_user):
    from django.contrib.auth.models import Permission

    reader = make_user("agent", username="rita-reader")
    reader.is_staff = True
    reader.save(update_fields=["is_staff"])
    reader.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(reader)
    session = ChatSessionFactory()
    assert client.post(admin_url("claim", session)).status_code == 403
    client.get(change_url(session))
    assert not ReviewClaim.objects.exists()


# --- assignment and My queue ---------------------------------------------------------------------


def test_admin_assigns_a_session_on_its_page_and_it_lands_in_my_queue(
    admin_client_role, qa_user, admin_role_user
):
    qa_client = login(Client(), qa_user)
    assigned, other = queue(2)
    response = admin_client_role.post(admin_url("assign", assigned), {"assign_to": str(qa_user.pk)})
    assert path_of(response) == change_url(assigned)
    assert "Assigned to quinn-qa." in texts(response)
    row = QAHistory.objects.get(kind=QAHistory.Kind.ASSIGN)
    assert (row.session_id, row.by, row.note) == (
        assigned.pk,
        admin_role_user,
        "assigned to quinn-qa",
    )

    listed = qa_client.get(CHANGELIST, {"mine": "yes"}).context["cl"].result_list
    assert [s.pk for s in listed] == [assigned.pk]
    # Opening another one claims it: it is in my queue too while the claim lives.
    qa_client.get(change_url(other))
    listed = qa_client.get(CHANGELIST, {"mine": "yes"}).context["cl"].result_list
    assert {s.pk for s in listed} == {assigned.pk, other.pk}


def test_assigning_refuses_reviewers_and_unknown_people(admin_client_role, qa_user, agent_user):
    qa_client = login(Client(), qa_user)
    session = ChatSessionFactory()
    assert qa_client.post(admin_url("assign", session), {"assign_to": "1"}).status_code == 403
    for value in ("nobody", "999999", str(agent_user.pk)):
        response = admin_client_role.post(admin_url("assign", session), {"assign_to": value})
        assert "Choose a reviewer from the list." in texts(response)
    assert not ReviewClaim.objects.filter(assigned_to__isnull=False).exists()


def test_admin_assigns_a_filtered_set_with_the_action(admin_client_role, qa_user):
    sessions = queue(3)
    response = admin_client_role.post(
        CHANGELIST,
        {
            "action": "assign_reviewer",
            ACTION_CHECKBOX_NAME: [s.pk for s in sessions],
            "index": 0,
        },
    )
    assert response.status_code == 200
    assert "Assign 3 sessions to a reviewer" in response.content.decode()
    response = admin_client_role.post(
        CHANGELIST,
        {
            "action": "assign_reviewer",
            ACTION_CHECKBOX_NAME: [s.pk for s in sessions],
            "post": "yes",
            "assign_to": str(qa_user.pk),
        },
    )
    assert "3 sessions assigned to quinn-qa." in texts(response)
    assert set(ReviewClaim.objects.values_list("assigned_to", flat=True)) == {qa_user.pk}


def test_the_list_shows_who_is_reviewing(qa_client, other_qa):
    session = ChatSessionFactory()
    claims.qa_claim(session=session, by=other_qa)
    html = qa_client.get(CHANGELIST).content.decode()
    assert "reviewing: olga-qa" in html


# --- a stale page --------------------------------------------------------------------------------


def test_a_decision_on_a_stale_page_is_refused_with_what_changed(qa_client, other_qa):
    session = ChatSessionFactory()
    page = qa_client.get(change_url(session))
    version = page.context["qa_version"]
    # Meanwhile the other reviewer decides it (after the first one's claim ran out).
    ReviewClaim.objects.filter(session=session).update(claimed_until=timezone.now())
    services.qa_mark_passed(session=session, by=other_qa)
    session.refresh_from_db()

    response = qa_client.post(
        admin_url("review", session),
        {"qa_action": "issue", "qa_notes": "Wrong price", "qa_version": version},
    )
    assert response.status_code == 200
    at = claims.clock(session.qa_status_at)
    assert (
        f"olga-qa marked this passed at {at} since you opened it; nothing was changed. "
        "Read the page as it is now and decide again."
    ) in texts(response)
    session.refresh_from_db()
    assert (session.qa_status, session.qa_notes) == (QAStatus.PASSED, "")
    # The page shown again carries the new version: deciding from it goes through (an issue
    # needs a failure category: qa.scorecards).
    from qa.scorecards.models import FailureCategory

    category, _ = FailureCategory.objects.get_or_create(name="Wrong information")
    response = qa_client.post(
        admin_url("review", session),
        {
            "qa_action": "issue",
            "qa_notes": "Wrong price",
            "qa_version": response.context["qa_version"],
            "scorecard": "1",
            "category": [str(category.pk)],
        },
    )
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE


# --- reopen on new visitor turns -----------------------------------------------------------------


def test_a_passed_session_goes_back_to_the_queue_when_the_visitor_writes_again(
    qa_user, make_conversation
):
    session = make_conversation()
    services.qa_mark_passed(session=session, by=qa_user)
    session.refresh_from_db()
    message_add(session=session, role=MessageRole.AI, text="Anything else?")
    session.refresh_from_db()
    assert session.qa_status == QAStatus.PASSED  # the agent talking reopens nothing

    message_add(session=session, role=MessageRole.VISITOR, text="Actually, one more thing")
    session.refresh_from_db()
    assert (session.qa_status, session.qa_status_by) == (QAStatus.UNCHECKED, None)
    row = QAHistory.objects.filter(session=session).order_by("-id").first()
    assert (row.from_status, row.to_status, row.by, row.note) == (
        QAStatus.PASSED,
        QAStatus.UNCHECKED,
        None,
        "reopened: 1 new message after review",
    )
    # Once back in the queue, more turns write nothing more.
    message_add(session=session, role=MessageRole.VISITOR, text="Hello?")
    assert QAHistory.objects.filter(session=session, note__startswith="reopened").count() == 1


def test_reopen_counts_the_visitor_turns_since_the_review(qa_user, make_conversation):
    session = make_conversation()
    services.qa_mark_passed(session=session, by=qa_user)
    session.refresh_from_db()
    later = session.qa_status_at + timedelta(seconds=1)
    # Turns stored without going through message_add (a bulk import): six of them, plus agent
    # replies, which do not count.
    ChatMessage.objects.bulk_create(
        ChatMessage(session=session, role=role, text=f"turn {i}", created_at=later)
        for i in range(6)
        for role in (MessageRole.VISITOR, MessageRole.AI)
    )
    services.qa_reopen_after_new_turns(session=session)
    assert QAHistory.objects.filter(session=session).order_by("-id")[0].note == (
        "reopened: 6 new messages after review"
    )


def test_new_turns_reopen_only_passed_sessions(qa_user, make_conversation):
    session = make_conversation()
    services.qa_mark_issue(session=session, by=qa_user, note="Wrong answer")
    message_add(session=session, role=MessageRole.VISITOR, text="Still there?")
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE


def test_the_reopened_history_row_shows_on_the_page(qa_client, qa_user, make_conversation):
    session = make_conversation()
    services.qa_mark_passed(session=session, by=qa_user)
    session.refresh_from_db()
    message_add(session=session, role=MessageRole.VISITOR, text="One more question")
    html = qa_client.get(change_url(session)).content.decode()
    assert "Passed → Unchecked" in html
    assert "reopened: 1 new message after review" in html


# --- fixed needs developer feedback --------------------------------------------------------------


def test_fixed_without_developer_feedback_is_refused(admin_client_role):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    response = admin_client_role.post(admin_url("review", session), {"qa_action": "fixed"})
    assert response.status_code == 200
    assert (
        "Write developer feedback (what was changed, so QA can re-check it) before marking "
        "this session fixed."
    ) in texts(response)
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE
    assert not Delivery.objects.filter(event_type="qa.session_fixed").exists()


def test_feedback_from_an_earlier_fix_does_not_count(admin_role_user, qa_user):
    session = ChatSessionFactory()
    services.qa_mark_issue(session=session, by=qa_user, note="Wrong price")
    services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Price list updated")
    services.qa_mark_issue(session=session, by=qa_user, note="Still the wrong price")
    with pytest.raises(services.FeedbackRequired):
        services.qa_mark_fixed(session=session, by=admin_role_user)
    services.qa_feedback_save(session=session, by=admin_role_user, feedback="Cache cleared too")
    services.qa_mark_fixed(session=session, by=admin_role_user)
    session.refresh_from_db()
    assert session.qa_status == QAStatus.FIXED


# --- the emails ----------------------------------------------------------------------------------


def test_the_issue_email_goes_to_qa_and_the_sites_developers(settings, qa_user):
    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com"]
    site = SiteFactory(
        developer_emails="dev-one@example.com,\nDev-Two@example.com\nqa-team@example.com"
    )
    session = ChatSessionFactory(site=site, lead_name="Vera Visitor")
    services.qa_mark_issue(session=session, by=qa_user, note="Invented a discount")
    email = Delivery.objects.get(kind=DeliveryKind.EMAIL, event_type="qa.issue_flagged")
    # QA first, then the developers; an address on both lists once.
    assert email.payload["to"] == [
        "qa-team@example.com",
        "dev-one@example.com",
        "Dev-Two@example.com",
    ]
    assert "Invented a discount" in email.payload["text"]


def test_the_issue_email_reaches_developers_when_qa_notify_is_empty(settings, qa_user):
    settings.QA_NOTIFY_EMAILS = []
    session = ChatSessionFactory(site=SiteFactory(developer_emails="dev@example.com"))
    services.qa_mark_issue(session=session, by=qa_user, note="Off topic")
    assert Delivery.objects.get(event_type="qa.issue_flagged").payload["to"] == ["dev@example.com"]


def test_qa_is_told_when_a_session_is_fixed_and_awaits_a_recheck(
    settings, qa_user, admin_role_user
):
    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com", "lead-qa@example.com"]
    site = SiteFactory(name="Pricing page", developer_emails="dev@example.com")
    session = ChatSessionFactory(site=site, lead_name="Vera <b>Visitor</b>")
    services.qa_mark_issue(session=session, by=qa_user, note="Quoted last year's price")
    services.qa_mark_fixed(
        session=session, by=admin_role_user, feedback="Prices now come from the <price> table"
    )
    email = Delivery.objects.get(event_type="qa.session_fixed")
    payload = email.payload
    assert payload["to"] == ["qa-team@example.com", "lead-qa@example.com"]  # QA, not developers
    assert payload["subject"] == "[leadchat QA] Fixed, awaiting a re-check: Vera <b>Visitor</b>"
    assert "marked fixed by ada-admin and awaits a re-check" in payload["text"]
    assert "Quoted last year's price" in payload["text"]
    assert "Prices now come from the <price> table" in payload["text"]
    assert f"/admin/sessions_app/chatsession/{session.pk}/change/" in payload["text"]
    # Stored text is escaped in the HTML part.
    assert "Prices now come from the &lt;price&gt; table" in payload["html"]
    assert "<b>Visitor</b>" not in payload["html"]


def test_no_fixed_email_when_qa_notify_is_empty(settings, qa_user, admin_role_user):
    settings.QA_NOTIFY_EMAILS = []
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Prompt changed")
    assert not Delivery.objects.filter(event_type="qa.session_fixed").exists()


def test_site_developer_emails_are_validated(admin_client_role):
    site = SiteFactory()
    from django.core.exceptions import ValidationError

    site.developer_emails = "dev@example.com, not-an-address"
    with pytest.raises(ValidationError) as refused:
        site.full_clean()
    assert "'not-an-address' is not an email address." in str(refused.value)
    site.developer_emails = "dev@example.com\nops@example.com"
    site.full_clean()
    assert site.developer_email_list == ["dev@example.com", "ops@example.com"]
