"""The QA panel's submit: `qa_review_submit`, `QAReviewForm` and the admin's review URL."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from qa import services, signals
from qa.forms import QAReviewForm
from qa.models import QAHistory
from qa.tests.conftest import login
from sessions_app.errors import SessionDeleted, TransitionNotAllowed
from sessions_app.models import ChatSession, QAStatus
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db


def review_url(session: ChatSession, **query: str) -> str:
    url = reverse("admin:sessions_app_chatsession_review", args=[session.pk])
    return f"{url}?{urlencode(query)}" if query else url


def change_url(session: ChatSession) -> str:
    return reverse("admin:sessions_app_chatsession_change", args=[session.pk])


def stored(session: ChatSession) -> tuple:
    session.refresh_from_db()
    return session.qa_status, session.qa_notes, session.dev_feedback


@pytest.fixture
def developer(make_user):
    """Staff who may mark fixed and write feedback, but not review (no QA-note permission)."""
    user = make_user("agent", username="fix-only-dev")
    user.user_permissions.add(
        Permission.objects.get(codename="fix_chatsession"),
        Permission.objects.get(codename="change_chatsession"),
    )
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no cached permissions


@pytest.fixture
def flagged():
    log: list[dict] = []
    signals.qa_issue_flagged.connect(
        lambda sender, **kw: log.append(kw), weak=False, dispatch_uid="t-flag"
    )
    yield log
    signals.qa_issue_flagged.disconnect(dispatch_uid="t-flag")


# --- qa_review_submit: legal moves -----------------------------------------------------------


def test_review_passes_a_session_with_its_note_in_one_history_row(qa_user):
    session = ChatSessionFactory()
    review = services.qa_review_submit(
        session=session, by=qa_user, decision="passed", qa_note="Polite and right"
    )
    assert (review.moved_to, review.texts_saved) == (QAStatus.PASSED, True)
    # The caller's instance follows the saved row.
    assert (session.qa_status, session.qa_status_by, session.qa_notes_by) == (
        QAStatus.PASSED,
        qa_user,
        qa_user,
    )
    assert stored(session) == (QAStatus.PASSED, "Polite and right", "")
    entry = QAHistory.objects.get(session=session)
    assert (entry.kind, entry.from_status, entry.to_status, entry.note) == (
        QAHistory.Kind.MOVE,
        QAStatus.UNCHECKED,
        QAStatus.PASSED,
        "Polite and right",
    )


def test_review_flags_an_issue_once_with_the_note(qa_user, flagged):
    session = ChatSessionFactory()
    services.qa_review_submit(
        session=session, by=qa_user, decision="issue", qa_note="Invented a price"
    )
    assert stored(session) == (QAStatus.ISSUE, "Invented a price", "")
    assert [(f["session"].pk, f["note"]) for f in flagged] == [(session.pk, "Invented a price")]


def test_review_issue_uses_the_saved_note_when_none_is_typed(qa_user):
    session = ChatSessionFactory(qa_notes="Already noted")
    review = services.qa_review_submit(
        session=session, by=qa_user, decision="issue", qa_note="Already noted"
    )
    # The unchanged note is no text write, only the move.
    assert (review.moved_to, review.texts_saved) == (QAStatus.ISSUE, False)
    assert stored(session) == (QAStatus.ISSUE, "Already noted", "")


def test_developer_marks_fixed_with_feedback(admin_role_user):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="wrong price")
    services.qa_review_submit(
        session=session,
        by=admin_role_user,
        decision="fixed",
        qa_note="wrong price",
        dev_feedback="Price list fixed",
    )
    assert stored(session) == (QAStatus.FIXED, "wrong price", "Price list fixed")
    entry = QAHistory.objects.get(session=session)
    assert (entry.to_status, entry.note, entry.by) == ("fixed", "Price list fixed", admin_role_user)


def test_fix_only_developer_marks_fixed_leaving_the_note_alone(developer):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="wrong price")
    services.qa_review_submit(
        session=session, by=developer, decision="fixed", qa_note="wrong price", dev_feedback="ok"
    )
    assert stored(session) == (QAStatus.FIXED, "wrong price", "ok")


def test_save_writes_note_and_feedback_as_two_history_rows(admin_role_user):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    review = services.qa_review_submit(
        session=session, by=admin_role_user, decision="save", qa_note="n", dev_feedback="f"
    )
    assert (review.moved_to, review.texts_saved) == (None, True)
    assert stored(session) == (QAStatus.ISSUE, "n", "f")
    kinds = QAHistory.objects.filter(session=session).order_by("id").values_list("kind", flat=True)
    assert list(kinds) == [QAHistory.Kind.NOTE, QAHistory.Kind.FEEDBACK]


def test_save_of_unchanged_texts_writes_nothing(qa_user):
    session = ChatSessionFactory(qa_notes="same", dev_feedback="theirs")
    before = ChatSession.objects.get(pk=session.pk).updated_at
    # A reviewer's form never carries the feedback (None); an unchanged note is no write.
    review = services.qa_review_submit(session=session, by=qa_user, decision="save", qa_note="same")
    assert review.texts_saved is False
    assert not QAHistory.objects.exists()
    assert ChatSession.objects.get(pk=session.pk).updated_at == before


def test_reviewer_may_resubmit_the_developers_feedback_unchanged(qa_user):
    session = ChatSessionFactory(dev_feedback="theirs")
    services.qa_review_submit(
        session=session, by=qa_user, decision="save", qa_note="mine", dev_feedback="theirs"
    )
    assert stored(session) == (QAStatus.UNCHECKED, "mine", "theirs")


# --- qa_review_submit: refusals --------------------------------------------------------------


def test_illegal_move_is_refused_with_the_allowed_moves_and_saves_no_text(admin_role_user):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="old")
    with pytest.raises(TransitionNotAllowed, match=r"from issue to passed.*Allowed from issue: "):
        services.qa_review_submit(
            session=session, by=admin_role_user, decision="passed", qa_note="typed"
        )
    assert stored(session) == (QAStatus.ISSUE, "old", "")
    assert not QAHistory.objects.exists()


def test_issue_without_any_note_is_refused(qa_user, flagged):
    session = ChatSessionFactory()
    with pytest.raises(services.NoteRequired, match="Write a QA note"):
        services.qa_review_submit(session=session, by=qa_user, decision="issue", qa_note="")
    assert stored(session) == (QAStatus.UNCHECKED, "", "")
    assert flagged == []


def test_issue_that_empties_the_saved_note_is_refused(qa_user):
    session = ChatSessionFactory(qa_notes="was noted")
    with pytest.raises(services.NoteRequired):
        services.qa_review_submit(session=session, by=qa_user, decision="issue", qa_note="")
    assert stored(session) == (QAStatus.UNCHECKED, "was noted", "")


@pytest.mark.parametrize(
    ("current", "decision", "texts", "message"),
    [
        (QAStatus.ISSUE, "fixed", {}, "You are not allowed to mark sessions fixed."),
        (
            QAStatus.ISSUE,
            "save",
            {"dev_feedback": "x"},
            "You are not allowed to write developer feedback.",
        ),
        (
            QAStatus.UNCHECKED,
            "passed",
            {"dev_feedback": "x"},
            "You are not allowed to write developer feedback.",
        ),
    ],
)
def test_reviewer_is_refused_the_developers_part(qa_user, current, decision, texts, message):
    session = ChatSessionFactory(qa_status=current, qa_notes="n")
    with pytest.raises(PermissionDenied) as refused:
        services.qa_review_submit(session=session, by=qa_user, decision=decision, **texts)
    assert str(refused.value) == message
    assert stored(session) == (current, "n", "")
    assert not QAHistory.objects.exists()


def test_agent_is_refused_every_review_write(agent_user):
    session = ChatSessionFactory()
    with pytest.raises(PermissionDenied, match="write QA notes"):
        services.qa_review_submit(session=session, by=agent_user, decision="save", qa_note="x")
    with pytest.raises(PermissionDenied, match="mark sessions passed"):
        services.qa_review_submit(session=session, by=agent_user, decision="passed")
    assert stored(session) == (QAStatus.UNCHECKED, "", "")


def test_fix_only_developer_may_not_rewrite_the_qa_note_while_marking_fixed(developer):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE, qa_notes="wrong price")
    with pytest.raises(PermissionDenied, match=r"You are not allowed to write QA notes\."):
        services.qa_review_submit(
            session=session, by=developer, decision="fixed", qa_note="nothing wrong"
        )
    assert stored(session) == (QAStatus.ISSUE, "wrong price", "")


def test_unknown_decision_is_refused(qa_user):
    with pytest.raises(TransitionNotAllowed, match=r"Unknown QA action 'unchecked'\."):
        services.qa_review_submit(session=ChatSessionFactory(), by=qa_user, decision="unchecked")


def test_trashed_session_is_not_reviewed(qa_user):
    session = ChatSessionFactory(deleted_at=timezone.now())
    with pytest.raises(SessionDeleted):
        services.qa_review_submit(session=session, by=qa_user, decision="save", qa_note="x")
    assert stored(session)[1] == ""


# --- qa_review_submit: one transaction -------------------------------------------------------


def test_a_refusal_after_the_note_was_written_leaves_no_note_behind(qa_user):
    # "save" writes the note first, then the feedback the reviewer may not write: the note's
    # write (and its history row) must roll back with the refusal.
    session = ChatSessionFactory()
    with pytest.raises(PermissionDenied, match="write developer feedback"):
        services.qa_review_submit(
            session=session, by=qa_user, decision="save", qa_note="half", dev_feedback="x"
        )
    assert stored(session) == (QAStatus.UNCHECKED, "", "")
    assert session.qa_notes_by is None
    assert not QAHistory.objects.exists()


def test_a_failing_issue_receiver_rolls_the_whole_review_back(qa_user):
    session = ChatSessionFactory()

    def broken_receiver(sender, **kwargs):
        raise RuntimeError("the notification outbox is down")

    signals.qa_issue_flagged.connect(broken_receiver, dispatch_uid="t-broken")
    try:
        with pytest.raises(RuntimeError):
            services.qa_review_submit(
                session=session, by=qa_user, decision="issue", qa_note="wrong"
            )
    finally:
        signals.qa_issue_flagged.disconnect(dispatch_uid="t-broken")
    assert stored(session) == (QAStatus.UNCHECKED, "", "")
    assert not QAHistory.objects.exists()


# --- QAReviewForm --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "decision", "review_next"),
    [
        ("passed", "passed", False),
        ("issue+next", "issue", True),
        ("fixed", "fixed", False),
        ("save+next", "save", True),
        (None, "save", False),  # Enter in a field submits without a button
    ],
)
def test_form_reads_the_button(action, decision, review_next):
    form = QAReviewForm({"qa_action": action} if action else {})
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["decision"], form.cleaned_data["review_next"]) == (
        decision,
        review_next,
    )


@pytest.mark.parametrize("action", ["unchecked", "passed+later", "drop table", "save+next+next"])
def test_form_refuses_an_unknown_button(action):
    form = QAReviewForm({"qa_action": action})
    assert not form.is_valid()
    assert form.errors["qa_action"] == [f"Unknown QA action {action!r}."]


def test_form_tells_a_missing_box_from_an_emptied_one():
    form = QAReviewForm({"qa_action": "save", "qa_notes": ""})
    assert form.is_valid()
    assert (form.cleaned_data["qa_notes"], form.cleaned_data["dev_feedback"]) == ("", None)


def test_form_normalises_line_ends_and_outer_blanks():
    form = QAReviewForm({"qa_notes": "  Bot\r\ninvented a price\r\n ", "dev_feedback": "\r\n"})
    assert form.is_valid()
    assert form.cleaned_data["qa_notes"] == "Bot\ninvented a price"
    assert form.cleaned_data["dev_feedback"] == ""


def test_form_counts_a_line_end_once_against_the_length_limit():
    at_limit = "a\r\n" * 3333 + "b"  # 10,000 characters as typed, 13,333 as posted
    assert QAReviewForm({"qa_notes": at_limit}).is_valid()
    form = QAReviewForm({"qa_notes": "x" * 10_001})
    assert not form.is_valid()
    assert "at most 10000 characters" in form.errors["qa_notes"][0]


# --- the admin's review URL ----------------------------------------------------------------


def test_page_form_posts_to_the_review_url_with_the_filters(qa_client):
    session = ChatSessionFactory()
    filters = urlencode({"site__id__exact": "7"})
    html = qa_client.get(f"{change_url(session)}?_changelist_filters={filters}").content.decode()
    action = urlsplit(review_url(session, _changelist_filters=filters))
    assert f'action="{action.path}?{action.query}"' in html


def test_review_url_moves_and_reviews_next(qa_client, qa_user, issue_category):
    session = ChatSessionFactory()
    response = qa_client.post(
        review_url(session, _changelist_filters="qa_status=all"),
        {"qa_action": "issue+next", "qa_notes": "wrong", **issue_category},
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("admin:sessions_app_chatsession_changelist")
    assert parse_qs(location.query) == {"qa_status": ["all"]}
    assert stored(session) == (QAStatus.ISSUE, "wrong", "")


def test_review_url_answers_only_posts(qa_client):
    session = ChatSessionFactory()
    assert qa_client.get(review_url(session)).status_code == 405


def test_review_url_refuses_the_reviewer_the_developers_part(qa_client):
    session = ChatSessionFactory(qa_status=QAStatus.ISSUE)
    response = qa_client.post(review_url(session), {"qa_action": "save", "dev_feedback": "x"})
    assert response.status_code == 403
    assert stored(session) == (QAStatus.ISSUE, "", "")


def test_review_url_refuses_a_user_without_change_permission(client, make_user):
    viewer = make_user("agent", username="view-only")
    # Staff by hand: the role would keep an agent out of the admin altogether.
    type(viewer).objects.filter(pk=viewer.pk).update(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_chatsession"),
        Permission.objects.get(codename="review_chatsession"),
    )
    session = ChatSessionFactory()
    response = login(client, viewer).post(review_url(session), {"qa_action": "passed"})
    assert response.status_code == 403
    assert stored(session)[0] == QAStatus.UNCHECKED


def test_review_url_of_a_trashed_session_redirects_and_changes_nothing(qa_client):
    session = ChatSessionFactory(deleted_at=timezone.now())
    response = qa_client.post(review_url(session), {"qa_action": "passed"})
    assert response.status_code == 302
    assert stored(session)[0] == QAStatus.UNCHECKED


def test_too_long_note_is_refused_naming_the_field_and_kept_on_the_page(qa_client):
    session = ChatSessionFactory()
    typed = "y" * 10_001
    response = qa_client.post(review_url(session), {"qa_action": "passed", "qa_notes": typed})
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any(t.startswith("QA note: ") and "10000" in t for t in texts), texts
    assert typed in response.content.decode()
    assert stored(session) == (QAStatus.UNCHECKED, "", "")


def test_unknown_button_is_refused_with_a_message_and_changes_nothing(qa_client):
    session = ChatSessionFactory()
    response = qa_client.post(review_url(session), {"qa_action": "bogus", "qa_notes": "typed"})
    assert response.status_code == 200
    assert "Unknown QA action &#x27;bogus&#x27;." in response.content.decode()
    assert "typed" in response.content.decode()
    assert stored(session) == (QAStatus.UNCHECKED, "", "")


def test_a_post_to_the_change_url_never_saves_the_model_form(qa_client):
    # The stock change view would save (and log) the session for any POST; it gets the review.
    session = ChatSessionFactory()
    response = qa_client.post(change_url(session), {"_save": "Save", "qa_status": "passed"})
    assert response.status_code == 302
    assert stored(session)[0] == QAStatus.UNCHECKED
    assert not LogEntry.objects.exists()
