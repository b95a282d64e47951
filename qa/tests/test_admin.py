from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from qa import services
from qa.models import QAHistory
from qa.tests.conftest import login
from sessions_app.models import ArchiveStatus, AutomationError, ChatSession, QAStatus
from sessions_app.services import automation_error_record, automation_error_resolve
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:sessions_app_chatsession_changelist"


def change_url(session: ChatSession, **query: str) -> str:
    url = reverse("admin:sessions_app_chatsession_change", args=[session.pk])
    return f"{url}?{urlencode(query)}" if query else url


def listed_ids(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- access per role -----------------------------------------------------------------------------


def test_agent_is_refused_the_admin_entirely(client, agent_user):
    session = ChatSessionFactory()
    login(client, agent_user)
    for url in (
        reverse("admin:index"),
        reverse(CHANGELIST),
        change_url(session),
        reverse("admin:sessions_app_chatsession_export"),
        reverse("admin:sessions_app_automationerror_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    # Writes too: an action and a QA move posted by hand change nothing.
    client.post(
        reverse(CHANGELIST),
        {"action": "mark_passed", ACTION_CHECKBOX_NAME: [session.pk], "index": 0},
    )
    client.post(change_url(session), {"qa_action": "passed"})
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
    assert not QAHistory.objects.exists()


def test_anonymous_visitor_is_sent_to_the_login(client):
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_reviewer_sees_the_console_but_cannot_add_or_delete_sessions(qa_client):
    response = qa_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert set(actions) - {""} == {"mark_passed", "flag_issue", "export_csv"}
    assert qa_client.get(reverse("admin:sessions_app_chatsession_add")).status_code == 403
    session = ChatSessionFactory()
    url = reverse("admin:sessions_app_chatsession_delete", args=[session.pk])
    assert qa_client.get(url).status_code == 403


def test_admin_role_gets_every_action(admin_client_role):
    response = admin_client_role.get(reverse(CHANGELIST))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert set(actions) - {""} == {
        "mark_passed",
        "flag_issue",
        "mark_fixed",
        "assign_reviewer",
        "archive_sessions",
        "export_csv",
    }


# --- the queue -----------------------------------------------------------------------------------


def test_queue_opens_on_unchecked_active_sessions(qa_client):
    unchecked = ChatSessionFactory()
    passed = ChatSessionFactory(qa_status=QAStatus.PASSED)
    archived = ChatSessionFactory(archive_status=ArchiveStatus.ARCHIVED)
    trashed = ChatSessionFactory(deleted_at=timezone.now())

    response = qa_client.get(reverse(CHANGELIST))
    assert listed_ids(response) == {unchecked.pk}

    response = qa_client.get(reverse(CHANGELIST), {"qa_status": "all", "archive": "all"})
    assert listed_ids(response) == {unchecked.pk, passed.pk, archived.pk}
    assert trashed.pk not in listed_ids(response)

    response = qa_client.get(reverse(CHANGELIST), {"qa_status": "passed"})
    assert listed_ids(response) == {passed.pk}


def test_queue_filters_narrow_the_list(qa_client):
    other_site = SiteFactory(name="Other")
    old = ChatSessionFactory(started_at=timezone.now() - timedelta(days=40))
    complete = ChatSessionFactory(completion_status="complete")
    on_other_site = ChatSessionFactory(site=other_site)
    messenger = ChatSessionFactory(channel="messenger")
    with_error = ChatSessionFactory()
    automation_error_record(message="boom", session=with_error)

    def ids(**params):
        return listed_ids(qa_client.get(reverse(CHANGELIST), params))

    assert ids(completion_status__exact="complete") == {complete.pk}
    assert ids(site__id__exact=other_site.pk) == {on_other_site.pk}
    assert ids(channel__exact="messenger") == {messenger.pk}
    assert ids(has_errors="yes") == {with_error.pk}
    assert with_error.pk not in ids(has_errors="no")
    today = timezone.now() - timedelta(days=7)
    recent = ids(started_at__gte=today.isoformat())
    assert old.pk not in recent
    assert complete.pk in recent


def test_changelist_columns_show_lead_badges_and_error_link(qa_client, make_conversation):
    session = make_conversation(name="Dana Lead", email="dana@example.com")
    automation_error_record(message="n8n failed", session=session)
    automation_error_record(message="n8n failed again", session=session)
    html = qa_client.get(reverse(CHANGELIST)).content.decode()
    assert "Dana Lead" in html
    assert "dana@example.com" in html
    assert 'class="qa-badge qa-badge--unchecked"' in html
    assert "Spring offer" in html
    assert f"session__id__exact={session.pk}" in html
    row = qa_client.get(reverse(CHANGELIST)).context["cl"].result_list[0]
    assert row.error_count == 2


def test_changelist_error_count_includes_resolved_errors(qa_client, make_conversation):
    # The console counts every error a session had (the dashboard counts the open ones).
    session = make_conversation()
    automation_error_record(message="n8n failed", session=session)
    resolved, _ = automation_error_record(message="n8n failed again", session=session)
    automation_error_resolve(error=resolved, by=None)
    row = qa_client.get(reverse(CHANGELIST)).context["cl"].result_list[0]
    assert row.error_count == 2


@pytest.mark.parametrize(
    ("term", "expected"),
    [("dana", "by_name"), ("example.org", "by_email"), ("refund", "by_message")],
)
def test_search_finds_lead_name_email_and_message_text(
    qa_client, make_conversation, term, expected
):
    sessions = {
        "by_name": make_conversation(name="Dana Scully", email="d@example.com"),
        "by_email": make_conversation(name="Fox", email="fox@example.org"),
        "by_message": make_conversation(name="Walter", visitor=("I want a REFUND now",)),
    }
    response = qa_client.get(reverse(CHANGELIST), {"q": term})
    assert listed_ids(response) == {sessions[expected].pk}


def test_search_with_two_words_needs_both(qa_client, make_conversation):
    both = make_conversation(name="Dana Scully", visitor=("pricing please",))
    make_conversation(name="Dana Other", visitor=("hello",))
    response = qa_client.get(reverse(CHANGELIST), {"q": "dana pricing"})
    assert listed_ids(response) == {both.pk}


def test_search_finds_a_session_by_its_id(qa_client, make_conversation):
    # The console searches as the dashboard does (sessions_app.selectors.sessions_search).
    wanted = make_conversation(name="Dana Scully")
    make_conversation(name="Dana Other")
    response = qa_client.get(reverse(CHANGELIST), {"q": str(wanted.public_id)})
    assert listed_ids(response) == {wanted.pk}


def test_changelist_sorts_only_on_indexed_columns(qa_client):
    response = qa_client.get(reverse(CHANGELIST))
    assert response.context["cl"].sortable_by == ("started",)


# --- bulk actions --------------------------------------------------------------------------------


def post_action(client, action: str, sessions, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [s.pk for s in sessions], "index": 0}
    data.update(extra)
    return client.post(reverse(CHANGELIST) + "?qa_status=all", data)


def test_bulk_pass_attributes_the_reviewer_and_reports_refusals(qa_client, qa_user):
    fresh = ChatSessionFactory()
    issue = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    response = post_action(qa_client, "mark_passed", [fresh, issue])
    assert response.status_code == 302
    fresh.refresh_from_db()
    issue.refresh_from_db()
    assert (fresh.qa_status, fresh.qa_status_by) == (QAStatus.PASSED, qa_user)
    assert issue.qa_status == QAStatus.ISSUE
    texts = message_texts(response)
    assert "1 session marked passed." in texts
    assert any(
        "1 session not marked passed" in t and "Allowed from issue: fixed." in t for t in texts
    )
    assert QAHistory.objects.get(session=fresh).by == qa_user


def test_bulk_flag_issue_asks_for_a_note_first(qa_client, qa_user, issue_category):
    sessions = [ChatSessionFactory(), ChatSessionFactory()]
    response = post_action(qa_client, "flag_issue", sessions)
    assert response.status_code == 200
    assert "admin/qa/flag_issue.html" in [t.name for t in response.templates]
    assert not QAHistory.objects.exists()

    # The confirmation page posts back without "index"; an empty note is refused.
    confirm = {
        "action": "flag_issue",
        ACTION_CHECKBOX_NAME: [s.pk for s in sessions],
        "post": "yes",
        "qa_note": "  ",
    }
    response = qa_client.post(reverse(CHANGELIST) + "?qa_status=all", confirm)
    assert response.status_code == 200
    assert b"Write what is wrong" in response.content
    assert not QAHistory.objects.exists()

    confirm["qa_note"] = "Greeting is in the wrong language"
    # An issue needs a failure category too (qa.scorecards).
    response = qa_client.post(reverse(CHANGELIST) + "?qa_status=all", confirm)
    assert response.status_code == 200
    assert b"Pick at least one failure category" in response.content
    assert not QAHistory.objects.exists()

    confirm["category"] = issue_category["category"]
    response = qa_client.post(reverse(CHANGELIST) + "?qa_status=all", confirm)
    assert response.status_code == 302
    for session in sessions:
        session.refresh_from_db()
        assert session.qa_status == QAStatus.ISSUE
        assert (session.qa_notes, session.qa_status_by) == (confirm["qa_note"], qa_user)
    assert "2 sessions flagged as an issue." in message_texts(response)


def test_reviewer_cannot_run_mark_fixed_by_posting_it(qa_client):
    issue = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    post_action(qa_client, "mark_fixed", [issue])
    issue.refresh_from_db()
    assert issue.qa_status == QAStatus.ISSUE
    post_action(qa_client, "archive_sessions", [issue])
    issue.refresh_from_db()
    assert issue.archive_status == ArchiveStatus.ACTIVE


def test_admin_marks_fixed_and_archives_in_bulk(admin_client_role, admin_role_user):
    issue = ChatSessionFactory(qa_status=QAStatus.ISSUE, dev_feedback="Prompt updated")
    unexplained = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    response = post_action(admin_client_role, "mark_fixed", [issue, unexplained])
    issue.refresh_from_db()
    unexplained.refresh_from_db()
    assert (issue.qa_status, issue.qa_status_by) == (QAStatus.FIXED, admin_role_user)
    # "Fixed" needs developer feedback: the one without is refused, and the message says why.
    assert unexplained.qa_status == QAStatus.ISSUE
    assert any(
        "1 session not marked fixed: Write developer feedback" in t for t in message_texts(response)
    )
    response = post_action(admin_client_role, "archive_sessions", [issue])
    issue.refresh_from_db()
    assert (issue.archive_status, issue.archived_by) == (ArchiveStatus.ARCHIVED, admin_role_user)
    assert "1 session archived." in message_texts(response)


def test_bulk_action_over_the_limit_changes_nothing(qa_client, monkeypatch):
    from qa.admin import sessions as session_admin

    monkeypatch.setattr(session_admin, "BULK_LIMIT", 2)
    batch = [ChatSessionFactory() for _ in range(3)]
    response = post_action(qa_client, "mark_passed", batch)
    assert any("at most 2" in t for t in message_texts(response))
    assert not ChatSession.objects.filter(qa_status=QAStatus.PASSED).exists()


# --- change view ---------------------------------------------------------------------------------


def test_change_view_shows_transcript_lead_and_only_allowed_buttons(qa_client, make_conversation):
    session = make_conversation(name="Ivy Lead", email="ivy@example.com", visitor=("Hi there",))
    response = qa_client.get(change_url(session))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Hi there" in html
    assert "Thanks! About: Hi there" in html
    assert "scripted · rules-v1" in html
    assert "42 ms" in html
    assert "ivy@example.com" in html
    assert 'value="passed"' in html
    assert 'value="issue"' in html
    assert 'value="fixed"' not in html
    assert 'name="dev_feedback"' not in html  # reviewers read feedback, never write it
    assert 'name="_save"' not in html  # nothing else on the page is editable

    session.qa_status = QAStatus.ISSUE
    session.save(update_fields=["qa_status"])
    html = qa_client.get(change_url(session)).content.decode()
    assert 'value="passed"' not in html
    assert 'value="issue"' not in html
    assert 'value="fixed"' not in html


def test_admin_sees_mark_fixed_and_feedback_on_an_issue(admin_client_role):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    html = admin_client_role.get(change_url(session)).content.decode()
    assert 'value="fixed"' in html
    assert 'name="dev_feedback"' in html
    assert 'value="passed"' not in html


def test_reviewer_flags_an_issue_from_the_change_view(qa_client, qa_user, issue_category):
    session = ChatSessionFactory()
    response = qa_client.post(
        change_url(session),
        {"qa_action": "issue", "qa_notes": "Bot\r\ninvented a price", **issue_category},
    )
    assert response.status_code == 302
    assert response["Location"] == change_url(session)
    session.refresh_from_db()
    assert (session.qa_status, session.qa_status_by) == (QAStatus.ISSUE, qa_user)
    assert session.qa_notes == "Bot\ninvented a price"
    entry = QAHistory.objects.get(session=session, kind=QAHistory.Kind.MOVE)
    assert (entry.from_status, entry.to_status, entry.by, entry.note) == (
        "unchecked",
        "issue",
        qa_user,
        "Bot\ninvented a price",
    )
    html = qa_client.get(change_url(session)).content.decode()
    assert "Unchecked → Issue" in html
    assert "quinn-qa" in html


def test_reviewer_posting_feedback_or_fixed_is_forbidden(qa_client):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    response = qa_client.post(change_url(session), {"qa_action": "save", "dev_feedback": "x"})
    assert response.status_code == 403
    response = qa_client.post(change_url(session), {"qa_action": "fixed"})
    assert response.status_code == 403
    session.refresh_from_db()
    assert (session.qa_status, session.dev_feedback) == (QAStatus.ISSUE, "")
    assert not QAHistory.objects.exists()


def test_illegal_move_is_refused_with_the_allowed_moves_and_keeps_the_typed_note(
    admin_client_role,
):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="old")
    response = admin_client_role.post(
        change_url(session), {"qa_action": "passed", "qa_notes": "typed but not saved"}
    )
    assert response.status_code == 200
    texts = message_texts(response)
    assert any("Cannot move a session from issue to passed" in t for t in texts)
    assert any("Allowed from issue: fixed." in t for t in texts)
    assert "typed but not saved" in response.content.decode()
    session.refresh_from_db()
    assert (session.qa_status, session.qa_notes) == (QAStatus.ISSUE, "old")


def test_admin_marks_fixed_with_feedback(admin_client_role, admin_role_user):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="wrong price")
    admin_client_role.post(
        change_url(session),
        {"qa_action": "fixed", "qa_notes": "wrong price", "dev_feedback": "Price list fixed"},
    )
    session.refresh_from_db()
    assert session.qa_status == QAStatus.FIXED
    assert (session.dev_feedback, session.dev_feedback_by) == ("Price list fixed", admin_role_user)
    entry = QAHistory.objects.get(session=session)
    assert (entry.to_status, entry.note, entry.by) == ("fixed", "Price list fixed", admin_role_user)


def test_save_notes_only_records_a_note_entry(qa_client, qa_user):
    session = ChatSessionFactory()
    qa_client.post(change_url(session), {"qa_action": "save", "qa_notes": "Polite, on topic"})
    session.refresh_from_db()
    assert (session.qa_status, session.qa_notes) == (QAStatus.UNCHECKED, "Polite, on topic")
    assert QAHistory.objects.get(session=session).kind == QAHistory.Kind.NOTE


def test_change_view_of_a_trashed_or_missing_session_redirects(qa_client):
    trashed = ChatSessionFactory(deleted_at=timezone.now())
    assert qa_client.get(change_url(trashed)).status_code == 302
    url = reverse("admin:sessions_app_chatsession_change", args=["999999"])
    assert qa_client.get(url).status_code == 302
    url = reverse("admin:sessions_app_chatsession_change", args=["not-a-number"])
    assert qa_client.get(url).status_code == 302


# --- review next ---------------------------------------------------------------------------------


def test_review_next_opens_the_next_unchecked_session_of_the_current_filter(
    qa_client, site, issue_category
):
    now = timezone.now()
    other_site = SiteFactory(name="Elsewhere")
    newest = ChatSessionFactory(site=site, started_at=now)
    ChatSessionFactory(site=other_site, started_at=now - timedelta(minutes=1))
    ChatSessionFactory(site=site, started_at=now - timedelta(minutes=2), qa_status="passed")
    second = ChatSessionFactory(site=site, started_at=now - timedelta(minutes=3))
    filters = urlencode({"site__id__exact": site.pk})

    response = qa_client.post(
        change_url(newest, _changelist_filters=filters), {"qa_action": "passed+next"}
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == change_url(second)
    # The filter rides along, so the next click stays within it too.
    assert parse_qs(location.query)["_changelist_filters"] == [filters]
    newest.refresh_from_db()
    assert newest.qa_status == QAStatus.PASSED

    response = qa_client.post(
        change_url(second, _changelist_filters=filters),
        {"qa_action": "issue+next", "qa_notes": "Off-topic answer", **issue_category},
    )
    location = urlsplit(response["Location"])
    assert location.path == reverse(CHANGELIST)
    assert parse_qs(location.query) == {"site__id__exact": [str(site.pk)]}
    assert any(t.startswith("Queue clear: no other session left") for t in message_texts(response))


def test_review_next_moves_down_the_queue_not_back_to_the_top(qa_client):
    now = timezone.now()
    ChatSessionFactory(started_at=now)  # newer, still unchecked: skipped for now
    current = ChatSessionFactory(started_at=now - timedelta(minutes=1))
    older = ChatSessionFactory(started_at=now - timedelta(minutes=2))
    response = qa_client.post(change_url(current), {"qa_action": "save+next"})
    assert urlsplit(response["Location"]).path == change_url(older)


def test_review_next_wraps_to_the_newest_unchecked_session(qa_client):
    now = timezone.now()
    newest = ChatSessionFactory(started_at=now)
    oldest = ChatSessionFactory(started_at=now - timedelta(hours=1))
    response = qa_client.post(change_url(oldest), {"qa_action": "save+next"})
    assert urlsplit(response["Location"]).path == change_url(newest)


def test_review_next_respects_the_search_of_the_current_filter(qa_client, make_conversation):
    first = make_conversation(name="Zed One", visitor=("pricing",))
    make_conversation(name="Other", visitor=("hello",))
    target = make_conversation(name="Zed Two", visitor=("pricing again",))
    filters = urlencode({"q": "pricing"})
    response = qa_client.post(
        change_url(target, _changelist_filters=filters), {"qa_action": "passed+next"}
    )
    assert urlsplit(response["Location"]).path == change_url(first)


# --- automation errors admin ---------------------------------------------------------------------


def test_automation_errors_list_filter_link_and_resolve(qa_client, qa_user):
    session = ChatSessionFactory(lead_name="Erin")
    error, _ = automation_error_record(
        message="Timeout", workflow="Lead intake", session=session, execution_id="e1"
    )
    automation_error_record(message="Other", workflow="Enrichment")
    url = reverse("admin:sessions_app_automationerror_changelist")

    response = qa_client.get(url, {"workflow": "Lead intake"})
    assert {e.pk for e in response.context["cl"].result_list} == {error.pk}
    assert change_url(session) in response.content.decode()

    response = qa_client.get(url, {"session__id__exact": session.pk})
    assert {e.pk for e in response.context["cl"].result_list} == {error.pk}

    qa_client.post(url, {"action": "mark_resolved", ACTION_CHECKBOX_NAME: [error.pk], "index": 0})
    error.refresh_from_db()
    assert (error.resolved, error.resolved_by) == (True, qa_user)
    response = qa_client.get(url, {"resolved__exact": "0"})
    assert error.pk not in {e.pk for e in response.context["cl"].result_list}


def test_automation_error_change_view_is_read_only(qa_client):
    error, _ = automation_error_record(message="Timeout")
    url = reverse("admin:sessions_app_automationerror_change", args=[error.pk])
    response = qa_client.get(url)
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert qa_client.post(url, {"message": "edited"}).status_code == 403
    error.refresh_from_db()
    assert error.message == "Timeout"
    assert not AutomationError.objects.filter(message="edited").exists()


def test_change_view_lists_the_sessions_automation_errors(qa_client):
    session = ChatSessionFactory()
    automation_error_record(message="HTTP 502 from CRM", workflow="CRM sync", session=session)
    html = qa_client.get(change_url(session)).content.decode()
    assert "HTTP 502 from CRM" in html
    assert "CRM sync" in html


# --- query counts (small data; the PostgreSQL scale test is in test_scale.py) -------------------


def test_changelist_and_change_view_queries_are_bounded(
    qa_client, qa_user, make_conversation, django_assert_max_num_queries
):
    sessions = [make_conversation(name=f"Lead {i}") for i in range(5)]
    for session in sessions:
        automation_error_record(message="boom", session=session)
        services.qa_note_save(session=session, by=qa_user, note="checked")
    with django_assert_max_num_queries(10):
        assert qa_client.get(reverse(CHANGELIST)).status_code == 200
    # 12 before scorecards, which add at most 6 fixed queries (criteria, categories, the
    # session's scorecards with their scores and categories, annotations); the first opening
    # also claims the session (lock, claim row, history row), the next ones renew it with one
    # UPDATE.
    with django_assert_max_num_queries(24):
        assert qa_client.get(change_url(sessions[0])).status_code == 200
    with django_assert_max_num_queries(20):
        assert qa_client.get(change_url(sessions[0])).status_code == 200
