"""Scorecards and annotations through their services: validation, atomicity, history rows."""

import importlib

import pytest
from django.core.exceptions import PermissionDenied

from qa.models import CriterionScore, FailureCategory, MessageAnnotation, QAHistory, Scorecard
from qa.scorecards.services import (
    AnnotationRefused,
    CategoryRequired,
    ScorecardInput,
    ScorecardRefused,
    annotation_add,
    scorecard_issue_flag,
    scorecard_review_submit,
    scorecard_save,
)
from sessions_app.delivery.models import Delivery
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import ChatSession, MessageRole, QAStatus
from sessions_app.services import message_add

pytestmark = pytest.mark.django_db


def nothing_stored(session: ChatSession) -> None:
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
    assert session.qa_notes == ""
    assert not Scorecard.objects.filter(session=session).exists()
    assert not CriterionScore.objects.exists()
    assert not QAHistory.objects.filter(session=session).exists()
    assert not Delivery.objects.exists()


@pytest.fixture
def notify_qa(settings):
    # A flagged issue queues the QA email: the outbox row must roll back with a refusal too.
    settings.QA_NOTIFY_EMAILS = ["qa-lead@example.com"]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 6, -1, 100])
def test_score_outside_one_to_five_is_refused(make_conversation, qa_user, tone, value):
    session = make_conversation()
    with pytest.raises(ScorecardRefused, match="must be 1 to 5"):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: value}))
    nothing_stored(session)


@pytest.mark.parametrize("value", [2, -1, 5])
def test_pass_fail_takes_only_pass_or_fail(make_conversation, qa_user, accurate, value):
    session = make_conversation()
    with pytest.raises(ScorecardRefused, match="must be pass or fail"):
        scorecard_save(
            session=session, by=qa_user, card=ScorecardInput(scores={accurate.pk: value})
        )
    nothing_stored(session)


def test_unknown_or_inactive_criterion_is_refused(make_conversation, qa_user, tone):
    session = make_conversation()
    with pytest.raises(ScorecardRefused, match="does not exist or is no longer used"):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={99999: 3}))
    tone.active = False
    tone.save()
    with pytest.raises(ScorecardRefused, match=f"Criterion {tone.pk} does not exist"):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 3}))
    nothing_stored(session)


def test_unknown_or_inactive_category_is_refused(make_conversation, qa_user, hallucination):
    session = make_conversation()
    with pytest.raises(ScorecardRefused, match="Failure category 99999 does not exist"):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(category_ids=[99999]))
    FailureCategory.objects.filter(pk=hallucination.pk).update(active=False)
    with pytest.raises(ScorecardRefused, match="no longer used"):
        scorecard_save(
            session=session, by=qa_user, card=ScorecardInput(category_ids=[hallucination.pk])
        )
    nothing_stored(session)


@pytest.mark.parametrize(
    "verdicts, message",
    [({"name": "maybe"}, "is not a lead verdict"), ({"website": "correct"}, "not a lead field")],
)
def test_bad_lead_verdict_is_refused(make_conversation, qa_user, verdicts, message):
    session = make_conversation()
    with pytest.raises(ScorecardRefused, match=message):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(verdicts=verdicts))
    nothing_stored(session)


def test_an_agent_may_not_score(make_conversation, agent_user, tone):
    session = make_conversation()
    with pytest.raises(PermissionDenied):
        scorecard_save(session=session, by=agent_user, card=ScorecardInput(scores={tone.pk: 3}))
    nothing_stored(session)


# --- the review submit: one transaction ---------------------------------------------------------


def test_issue_without_a_category_is_refused_and_nothing_is_stored(
    make_conversation, qa_user, tone, notify_qa
):
    session = make_conversation()
    with pytest.raises(CategoryRequired, match="at least one failure category"):
        scorecard_review_submit(
            session=session,
            by=qa_user,
            decision=QAStatus.ISSUE,
            qa_note="Invented a price",
            scorecard=ScorecardInput(scores={tone.pk: 2}, verdicts={"name": "correct"}),
        )
    # Neither the scorecard, nor the move, nor its history rows, nor the issue email.
    nothing_stored(session)


def test_issue_with_a_category_stores_scorecard_move_and_history(
    make_conversation, qa_user, tone, accurate, hallucination, missed_lead, notify_qa
):
    session = make_conversation()
    review = scorecard_review_submit(
        session=session,
        by=qa_user,
        decision=QAStatus.ISSUE,
        qa_note="Invented a price",
        scorecard=ScorecardInput(
            scores={tone.pk: 2, accurate.pk: 0},
            category_ids=[missed_lead.pk, hallucination.pk],
            verdicts={"name": "correct", "email": "invented", "phone": "missing", "need": ""},
        ),
    )
    assert review.moved_to == QAStatus.ISSUE
    card = Scorecard.objects.get(session=session)
    assert (card.reviewer, card.name_verdict, card.email_verdict, card.phone_verdict) == (
        qa_user,
        "correct",
        "invented",
        "missing",
    )
    assert card.need_verdict == ""
    assert {(s.criterion.name, s.value) for s in card.scores.all()} == {
        ("Tone", 2),
        ("Answered accurately", 0),
    }
    assert {c.name for c in card.categories.all()} == {"Hallucination", "Missed lead"}
    rows = {row.kind: row for row in QAHistory.objects.filter(session=session)}
    assert set(rows) == {"scorecard", "move"}
    assert rows["scorecard"].by == qa_user
    assert rows["scorecard"].note == (
        "Scores: Answered accurately fail, Tone 2/5. "
        "Categories: Hallucination, Missed lead. "
        "Lead: Name correct, Email invented, Phone missing."
    )
    assert Delivery.objects.count() == 1  # the issue email, queued with the move


def test_a_refused_move_rolls_back_the_scorecard(
    make_conversation, admin_role_user, tone, hallucination
):
    session = make_conversation()
    with pytest.raises(TransitionNotAllowed, match="Cannot move"):
        scorecard_review_submit(
            session=session,
            by=admin_role_user,
            decision=QAStatus.FIXED,  # not from unchecked
            scorecard=ScorecardInput(scores={tone.pk: 4}, category_ids=[hallucination.pk]),
        )
    nothing_stored(session)


def test_a_later_refusal_in_the_card_leaves_no_half_written_scores(
    make_conversation, qa_user, tone, accurate
):
    session = make_conversation()
    with pytest.raises(ScorecardRefused):
        scorecard_review_submit(
            session=session,
            by=qa_user,
            decision=QAStatus.PASSED,
            scorecard=ScorecardInput(scores={tone.pk: 4, accurate.pk: 7}),
        )
    nothing_stored(session)


def test_issue_counts_a_category_picked_by_an_earlier_scorecard(
    make_conversation, qa_user, hallucination
):
    session = make_conversation()
    scorecard_save(
        session=session, by=qa_user, card=ScorecardInput(category_ids=[hallucination.pk])
    )
    review = scorecard_review_submit(
        session=session, by=qa_user, decision=QAStatus.ISSUE, qa_note="Made up a discount"
    )
    assert review.moved_to == QAStatus.ISSUE


def test_passing_needs_no_category(make_conversation, qa_user):
    session = make_conversation()
    review = scorecard_review_submit(session=session, by=qa_user, decision=QAStatus.PASSED)
    assert review.moved_to == QAStatus.PASSED
    assert not Scorecard.objects.exists()  # no card carried, none stored


def test_each_reviewer_keeps_their_own_scorecard_and_a_resubmit_replaces_it(
    make_conversation, qa_user, make_user, tone
):
    session = make_conversation()
    other = make_user("qa", username="sam-qa")
    scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 2}))
    scorecard_save(session=session, by=other, card=ScorecardInput(scores={tone.pk: 5}))
    scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 3}))
    values = dict(
        CriterionScore.objects.filter(scorecard__session=session).values_list(
            "scorecard__reviewer__username", "value"
        )
    )
    assert values == {"quinn-qa": 3, "sam-qa": 5}
    assert QAHistory.objects.filter(kind=QAHistory.Kind.SCORECARD).count() == 3


def test_an_unchanged_scorecard_writes_no_history_row(make_conversation, qa_user, tone):
    session = make_conversation()
    card = ScorecardInput(scores={tone.pk: 4}, verdicts={"email": "correct"})
    first = scorecard_save(session=session, by=qa_user, card=card)
    again = scorecard_save(session=session, by=qa_user, card=card)
    assert again == first
    assert QAHistory.objects.filter(kind=QAHistory.Kind.SCORECARD).count() == 1


def test_an_empty_card_stores_nothing_until_there_is_a_scorecard(make_conversation, qa_user, tone):
    session = make_conversation()
    empty = ScorecardInput(scores={tone.pk: None}, verdicts={"name": ""})
    assert scorecard_save(session=session, by=qa_user, card=empty) is None
    assert not Scorecard.objects.exists()
    scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 4}))
    scorecard_save(session=session, by=qa_user, card=empty)  # the reviewer cleared every box
    assert not CriterionScore.objects.exists()
    assert QAHistory.objects.filter(kind="scorecard").first().note == "Scorecard cleared."


def test_scores_of_a_criterion_deactivated_since_are_kept(
    make_conversation, qa_user, tone, accurate
):
    session = make_conversation()
    scorecard_save(
        session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 4, accurate.pk: 1})
    )
    accurate.active = False
    accurate.save()
    scorecard_save(session=session, by=qa_user, card=ScorecardInput(scores={tone.pk: 2}))
    assert dict(CriterionScore.objects.values_list("criterion__name", "value")) == {
        "Tone": 2,
        "Answered accurately": 1,
    }


# --- annotations --------------------------------------------------------------------------------


def ai_message(session: ChatSession):
    return session.messages.filter(role=MessageRole.AI).order_by("id").last()


def test_annotation_is_pinned_to_an_ai_message_with_a_history_row(make_conversation, qa_user):
    session = make_conversation()
    message = ai_message(session)
    annotation = annotation_add(
        session=session,
        message_id=message.pk,
        by=qa_user,
        note="  Never promise a discount\r\n",
        expected_reply="Our prices are on the pricing page.",
    )
    assert (annotation.message, annotation.by, annotation.note) == (
        message,
        qa_user,
        "Never promise a discount",
    )
    row = QAHistory.objects.get(session=session)
    assert row.kind == QAHistory.Kind.ANNOTATION
    assert "Never promise a discount" in row.note
    assert row.note.endswith("\nExpected reply: Our prices are on the pricing page.")


@pytest.mark.parametrize("role", [MessageRole.VISITOR, MessageRole.SYSTEM])
def test_annotation_on_a_message_not_written_by_the_ai_is_refused(make_conversation, qa_user, role):
    session = make_conversation()
    message = message_add(session=session, role=role, text="Visitor left the page.")
    with pytest.raises(AnnotationRefused, match="AI agent's messages only"):
        annotation_add(session=session, message_id=message.pk, by=qa_user, note="x")
    assert not MessageAnnotation.objects.exists()
    assert not QAHistory.objects.exists()


def test_annotation_on_another_sessions_message_is_refused(make_conversation, qa_user):
    session, other = make_conversation(), make_conversation()
    with pytest.raises(AnnotationRefused, match="not part of this session"):
        annotation_add(
            session=session, message_id=ai_message(other).pk, by=qa_user, note="wrong one"
        )
    assert not MessageAnnotation.objects.exists()


def test_annotation_needs_a_note_and_a_reviewer(make_conversation, qa_user, agent_user):
    session = make_conversation()
    message = ai_message(session)
    with pytest.raises(AnnotationRefused, match="Write the note"):
        annotation_add(session=session, message_id=message.pk, by=qa_user, note="  \n ")
    with pytest.raises(PermissionDenied):
        annotation_add(session=session, message_id=message.pk, by=agent_user, note="x")
    assert not MessageAnnotation.objects.exists()


# --- the bulk flag -----------------------------------------------------------------------------


def test_bulk_flag_adds_its_categories_to_the_reviewers_scorecard(
    make_conversation, qa_user, tone, hallucination, missed_lead
):
    session = make_conversation()
    scorecard_save(
        session=session,
        by=qa_user,
        card=ScorecardInput(
            scores={tone.pk: 2}, category_ids=[missed_lead.pk], verdicts={"email": "wrong"}
        ),
    )
    scorecard_issue_flag(
        session=session, by=qa_user, note="Made up a price", category_ids=[hallucination.pk]
    )
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE
    card = Scorecard.objects.get(session=session)
    assert {c.name for c in card.categories.all()} == {"Hallucination", "Missed lead"}
    assert (card.email_verdict, card.scores.get().value) == ("wrong", 2)


def test_bulk_flag_without_a_category_is_refused(make_conversation, qa_user):
    session = make_conversation()
    with pytest.raises(CategoryRequired):
        scorecard_issue_flag(session=session, by=qa_user, note="x", category_ids=[])
    nothing_stored(session)


def test_seeded_categories_are_the_six_of_the_issue_and_seeding_twice_adds_none():
    from django.apps import apps

    importlib.import_module("qa.migrations.0004_scorecards").seed_categories(apps, None)
    assert list(FailureCategory.objects.order_by("order").values_list("name", "active")) == [
        ("Hallucination", True),
        ("Wrong information", True),
        ("Missed lead", True),
        ("Tone", True),
        ("Policy", True),
        ("Technical", True),
    ]


def test_erasing_a_lead_removes_their_scorecards_and_annotations(make_conversation, qa_user, tone):
    from sessions_app.services import lead_erase

    session = make_conversation(email="gone@example.com")
    kept = make_conversation(email="stays@example.com")
    for s in (session, kept):
        scorecard_save(session=s, by=qa_user, card=ScorecardInput(scores={tone.pk: 3}))
        annotation_add(session=s, message_id=ai_message(s).pk, by=qa_user, note="quote")
    lead_erase(email="gone@example.com")
    assert list(Scorecard.objects.values_list("session_id", flat=True)) == [kept.pk]
    assert list(MessageAnnotation.objects.values_list("session_id", flat=True)) == [kept.pk]


def test_a_category_retired_since_stays_on_the_card(
    make_conversation, qa_user, hallucination, missed_lead
):
    session = make_conversation()
    scorecard_save(
        session=session,
        by=qa_user,
        card=ScorecardInput(category_ids=[hallucination.pk, missed_lead.pk]),
    )
    FailureCategory.objects.filter(pk=missed_lead.pk).update(active=False)
    scorecard_save(session=session, by=qa_user, card=ScorecardInput(category_ids=[]))
    card = Scorecard.objects.get()
    assert [c.name for c in card.categories.all()] == ["Missed lead"]
