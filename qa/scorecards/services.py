"""Every write of scorecards and annotations (STYLE.md: one path per change, with its history row).

`scorecard_review_submit` is the console's QA panel: the reviewer's scorecard and the QA move
of `qa.services.qa_review_submit` in one transaction, so a refused score, category or move leaves
nothing behind (not the scorecard, not the move, not the issue email's outbox row).
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from qa.models import QAHistory
from qa.scorecards.models import (
    LEAD_FIELDS,
    Criterion,
    CriterionKind,
    CriterionScore,
    FailureCategory,
    LeadVerdict,
    MessageAnnotation,
    Scorecard,
)
from qa.services import (
    REVIEW_PERMISSION,
    QAReview,
    _lock_reviewable,
    _require,
    qa_mark_issue,
    qa_review_submit,
)
from sessions_app.errors import DomainError
from sessions_app.models import ChatMessage, ChatSession, MessageRole, QAStatus
from sessions_app.transitions import copy_state

# What a reviewer may type into an annotation (the textareas' maxlength, checked again here).
ANNOTATION_MAX_LENGTH = 10_000
LEAD_FIELD_NAMES = tuple(name for name, _label in LEAD_FIELDS)


class ScorecardRefused(DomainError):
    """A score out of its range, an unknown or inactive criterion or category, a bad verdict."""


class CategoryRequired(DomainError):
    """An issue says what kind of failure it is: the trends and the digest count by category."""


class AnnotationRefused(DomainError):
    """An empty note, a message of another session, or a message the AI did not write."""


@dataclass(frozen=True)
class ScorecardInput:
    """What the QA panel's scorecard carried: criterion id -> value (None: not scored), the
    picked category ids, lead field -> verdict ("" : not judged)."""

    scores: Mapping[int, int | None] = field(default_factory=dict)
    category_ids: Collection[int] = ()
    verdicts: Mapping[str, str] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return (
            all(v is None for v in self.scores.values())
            and not self.category_ids
            and not any(self.verdicts.values())
        )


def score_label(criterion: Criterion, value: int) -> str:
    if criterion.kind == CriterionKind.PASS_FAIL:
        return "pass" if value else "fail"
    return f"{value}/5"


def _validated_scores(scores: Mapping[int, int | None]) -> dict[Criterion, int]:
    criteria = Criterion.objects.in_bulk(list(scores))
    valid: dict[Criterion, int] = {}
    for criterion_id, value in scores.items():
        criterion = criteria.get(criterion_id)
        if criterion is None or not criterion.active:
            raise ScorecardRefused(
                f"Criterion {criterion_id} does not exist or is no longer used; reload the page."
            )
        if value is None:
            continue
        low, high = criterion.value_range
        if not low <= value <= high:
            allowed = "pass or fail" if criterion.kind == CriterionKind.PASS_FAIL else "1 to 5"
            raise ScorecardRefused(
                f"The score for {criterion.name!r} must be {allowed}; {value} is out of range."
            )
        valid[criterion] = value
    return valid


def _validated_categories(category_ids: Collection[int]) -> list[FailureCategory]:
    wanted = set(category_ids)
    found = FailureCategory.objects.in_bulk(list(wanted))
    for category_id in sorted(wanted):
        category = found.get(category_id)
        if category is None or not category.active:
            raise ScorecardRefused(
                f"Failure category {category_id} does not exist or is no longer used; "
                "reload the page."
            )
    return sorted(found.values(), key=lambda c: (c.order, c.name))


def _validated_verdicts(verdicts: Mapping[str, str]) -> dict[str, str]:
    valid: dict[str, str] = {}
    for name, verdict in verdicts.items():
        if name not in LEAD_FIELD_NAMES:
            raise ScorecardRefused(f"{name!r} is not a lead field a reviewer judges.")
        if verdict and verdict not in LeadVerdict.values:
            raise ScorecardRefused(
                f"{verdict!r} is not a lead verdict (correct, wrong, missing or invented)."
            )
        valid[name] = verdict
    return valid


def scorecard_summary(
    scores: Mapping[Criterion, int],
    categories: Collection[FailureCategory],
    verdicts: Mapping[str, str],
) -> str:
    """The history row's text: "Scores: Tone 4/5, Accurate fail. Categories: ... Lead: ..."."""
    parts = []
    if scores:
        ordered = sorted(scores.items(), key=lambda item: (item[0].order, item[0].name))
        parts.append(
            "Scores: " + ", ".join(f"{c.name} {score_label(c, v)}" for c, v in ordered) + "."
        )
    if categories:
        parts.append("Categories: " + ", ".join(c.name for c in categories) + ".")
    judged = [(label, verdicts[name]) for name, label in LEAD_FIELDS if verdicts.get(name)]
    if judged:
        parts.append("Lead: " + ", ".join(f"{label} {v}" for label, v in judged) + ".")
    return " ".join(parts) or "Scorecard cleared."


def scorecard_save(*, session: ChatSession, by: User, card: ScorecardInput) -> Scorecard | None:
    """Replace `by`'s scorecard of `session` with `card`; a history row says what it holds.

    Scores and categories deactivated since are kept (the form no longer shows them, and the
    old judgement stays true). Returns None when there was nothing to store (an empty card and no
    scorecard yet); an unchanged card is no write and no history row.
    """
    return _scorecard_save(session=session, by=by, card=card)[0]


def _scorecard_save(
    *, session: ChatSession, by: User, card: ScorecardInput
) -> tuple[Scorecard | None, bool]:
    """`scorecard_save`, and whether it wrote anything."""
    _require(by, REVIEW_PERMISSION, "score sessions")
    with transaction.atomic():
        locked = _lock_reviewable(session)
        scores = _validated_scores(card.scores)
        categories = _validated_categories(card.category_ids)
        verdicts = _validated_verdicts(card.verdicts)
        # The session's lock above serialises this reviewer's submits: two tabs cannot both
        # insert a first scorecard (the unique constraint would turn the second into a 500).
        existing = scorecards_for_update(session=locked, reviewer=by).first()
        if existing is None and card.is_empty():
            return None, False
        now = timezone.now()
        scorecard = existing or Scorecard(session=locked, reviewer=by, created_at=now)
        old_scores = (
            {s.criterion_id: s.value for s in existing.scores.filter(criterion__active=True)}
            if existing
            else {}
        )
        old_categories = (
            set(existing.categories.filter(active=True).values_list("pk", flat=True))
            if existing
            else set()
        )
        # As with scores: a category retired since stays on the cards that used it.
        retired = list(existing.categories.filter(active=False)) if existing else []
        new_scores = {c.pk: v for c, v in scores.items()}
        new_verdicts = {name: verdicts.get(name, "") for name in LEAD_FIELD_NAMES}
        unchanged = (
            existing is not None
            and old_scores == new_scores
            and old_categories == {c.pk for c in categories}
            and all(getattr(existing, f"{n}_verdict") == v for n, v in new_verdicts.items())
        )
        if unchanged:
            return existing, False
        for name, verdict in new_verdicts.items():
            setattr(scorecard, f"{name}_verdict", verdict)
        scorecard.updated_at = now
        scorecard.save()
        CriterionScore.objects.filter(scorecard=scorecard, criterion__active=True).delete()
        CriterionScore.objects.bulk_create(
            CriterionScore(scorecard=scorecard, criterion=c, value=v) for c, v in scores.items()
        )
        scorecard.categories.set([*categories, *retired])
        QAHistory.objects.create(
            session=locked,
            kind=QAHistory.Kind.SCORECARD,
            from_status=locked.qa_status,
            to_status=locked.qa_status,
            by=by,
            at=now,
            note=scorecard_summary(scores, categories, new_verdicts),
        )
    return scorecard, True


@dataclass(frozen=True)
class ScoredReview:
    """What one submit of the QA panel did: the move or texts (`review`), and the scorecard."""

    review: QAReview
    scorecard_saved: bool

    @property
    def moved_to(self) -> str | None:
        return self.review.moved_to

    @property
    def texts_saved(self) -> bool:
        return self.review.texts_saved


def scorecard_review_submit(
    *,
    session: ChatSession,
    by: User,
    decision: str,
    qa_note: str | None = None,
    dev_feedback: str | None = None,
    scorecard: ScorecardInput | None = None,
    opened_version: str | None = None,
) -> ScoredReview:
    """The QA panel's submit: the reviewer's scorecard (None: the form did not carry one), then
    the move or the texts (`qa.services.qa_review_submit`), in one transaction.

    An issue needs at least one failure category on the session (picked now or by an earlier
    scorecard of any reviewer); checked after the move, inside the transaction, so a refusal
    also rolls back the issue email queued by the move.
    """
    with transaction.atomic():
        saved = False
        if scorecard is not None:
            saved = _scorecard_save(session=session, by=by, card=scorecard)[1]
        review = qa_review_submit(
            session=session,
            by=by,
            decision=decision,
            qa_note=qa_note,
            dev_feedback=dev_feedback,
            opened_version=opened_version,
        )
        if review.moved_to == QAStatus.ISSUE and not session_has_category(session):
            raise CategoryRequired("Pick at least one failure category before flagging an issue.")
    return ScoredReview(review=review, scorecard_saved=saved)


def scorecard_issue_flag(
    *, session: ChatSession, by: User, note: str, category_ids: Collection[int]
) -> ChatSession:
    """Flag an issue with its failure categories (the console's bulk action), atomically: the
    categories join `by`'s scorecard of the session (scores and verdicts stay), then
    `qa.services.qa_mark_issue`."""
    if not category_ids:
        raise CategoryRequired("Pick at least one failure category before flagging an issue.")
    _require(by, REVIEW_PERMISSION, "flag issues")
    with transaction.atomic():
        locked = _lock_reviewable(session)
        categories = _validated_categories(category_ids)
        existing = scorecards_for_update(session=locked, reviewer=by).first()
        # Scores of deactivated criteria are kept by scorecard_save itself (it never sees them).
        kept = existing.scores.filter(criterion__active=True) if existing else []
        card = ScorecardInput(
            scores={score.criterion_id: score.value for score in kept},
            category_ids={c.pk for c in categories}
            | (set(existing.categories.values_list("pk", flat=True)) if existing else set()),
            verdicts={n: getattr(existing, f"{n}_verdict") for n in LEAD_FIELD_NAMES}
            if existing
            else {},
        )
        scorecard_save(session=locked, by=by, card=card)
        flagged = qa_mark_issue(session=locked, by=by, note=note)
    copy_state(flagged, session)
    return flagged


def scorecards_for_update(*, session: ChatSession, reviewer: User) -> QuerySet[Scorecard]:
    return Scorecard.objects.select_for_update().filter(session=session, reviewer=reviewer)


def session_has_category(session: ChatSession) -> bool:
    return Scorecard.objects.filter(session=session, categories__isnull=False).exists()


def annotation_add(
    *,
    session: ChatSession,
    message_id: int,
    by: User,
    note: str,
    expected_reply: str = "",
) -> MessageAnnotation:
    """Pin `note` (and the reply the agent should have given) to one AI message of `session`."""
    _require(by, REVIEW_PERMISSION, "annotate messages")
    note = note.replace("\r\n", "\n").strip()
    expected_reply = expected_reply.replace("\r\n", "\n").strip()
    if not note:
        raise AnnotationRefused("Write the note before adding an annotation.")
    if len(note) > ANNOTATION_MAX_LENGTH or len(expected_reply) > ANNOTATION_MAX_LENGTH:
        raise AnnotationRefused(
            f"An annotation's note and expected reply are at most {ANNOTATION_MAX_LENGTH:,} "
            "characters each."
        )
    with transaction.atomic():
        locked = _lock_reviewable(session)
        message = ChatMessage.objects.filter(pk=message_id, session=locked).first()
        if message is None:
            raise AnnotationRefused("That message is not part of this session.")
        if message.role != MessageRole.AI:
            raise AnnotationRefused(
                "Annotations are pinned to the AI agent's messages only; this one is from "
                f"the {message.get_role_display().lower()}."
            )
        now = timezone.now()
        annotation = MessageAnnotation.objects.create(
            session=locked,
            message=message,
            note=note,
            expected_reply=expected_reply,
            by=by,
            at=now,
        )
        sent = timezone.localtime(message.created_at)
        said = f"On the AI message of {sent:%Y-%m-%d %H:%M:%S}: {note}"
        if expected_reply:
            said += f"\nExpected reply: {expected_reply}"
        QAHistory.objects.create(
            session=locked,
            kind=QAHistory.Kind.ANNOTATION,
            from_status=locked.qa_status,
            to_status=locked.qa_status,
            by=by,
            at=now,
            note=said,
        )
    copy_state(locked, session)
    return annotation
