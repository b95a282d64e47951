"""Every QA change of a chat session goes through these functions (STYLE.md: one path per change).

The admin console, its bulk actions, commands and tests all call them. Each one opens a
transaction, locks the session row, checks the acting user's permission and the move against
`QA_MOVES` (kept beside the model), records who and when, saves with `update_fields`, writes a
`QAHistory` row and sends `qa_issue_flagged` inside the transaction, so its receiver that writes
an outbox row (the issue notification email) commits or rolls back together with the move.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from qa import claims, signals
from qa.models import QAHistory
from sessions_app.errors import DomainError, SessionDeleted, TransitionNotAllowed
from sessions_app.models import QA_MOVES, ChatMessage, ChatSession, MessageRole, QAStatus
from sessions_app.transitions import MoveWording, check_move, copy_state, lock

REVIEW_PERMISSION = "sessions_app.review_chatsession"
FIX_PERMISSION = "sessions_app.fix_chatsession"

# Which permission each target status needs: reviewers pass and flag; only developers/admins
# declare an issue fixed.
MOVE_PERMISSIONS: dict[str, str] = {
    QAStatus.PASSED: REVIEW_PERMISSION,
    QAStatus.ISSUE: REVIEW_PERMISSION,
    QAStatus.FIXED: FIX_PERMISSION,
}


class NoteRequired(DomainError):
    """Flagging an issue without saying what is wrong helps nobody (the email carries the note)."""


class FeedbackRequired(DomainError):
    """ "Fixed" with no word of what was changed proves nothing: QA cannot re-check it."""


class StaleDecision(DomainError):
    """The page was opened on a QA status that has changed since (someone else decided)."""


# A session passed by QA goes back to the queue when the visitor writes again: not a move a
# person makes (QA_MOVES has no passed -> unchecked), so it has its own table.
REOPEN_MOVES: dict[str, set[str]] = {QAStatus.PASSED: {QAStatus.UNCHECKED}}


def can_review(user: User | AnonymousUser | None) -> bool:
    return user is not None and user.is_active and user.has_perm(REVIEW_PERMISSION)


def can_fix(user: User | AnonymousUser | None) -> bool:
    return user is not None and user.is_active and user.has_perm(FIX_PERMISSION)


def allowed_moves(*, current: str, user: User | AnonymousUser | None) -> list[str]:
    """The moves from `current` that `user` may make, in a stable order (buttons, messages)."""
    return [
        status
        for status in (QAStatus.PASSED, QAStatus.ISSUE, QAStatus.FIXED)
        if status in QA_MOVES.get(current, set())
        and user is not None
        and user.is_active
        and user.has_perm(MOVE_PERMISSIONS[status])
    ]


def _require(user: User, permission: str, what: str) -> None:
    if not (user.is_active and user.has_perm(permission)):
        raise PermissionDenied(f"You are not allowed to {what}.")


def _lock_reviewable(session: ChatSession) -> ChatSession:
    locked = lock(session)
    if locked.is_deleted:
        raise SessionDeleted("This session is in the trash; restore it before reviewing it.")
    return locked


def _label(status: str) -> str:
    return QAStatus(status).label.lower()


QA_WORDING = MoveWording("a session", label=_label, list_label=_label, order=QAStatus.values)


def _move(
    *,
    session: ChatSession,
    by: User,
    target: str,
    note: str | None = None,
    feedback: str | None = None,
    via: str = "",
) -> ChatSession:
    """`via` says where the decision was made ("After replay 1a2b3c4d"): the history row's note
    when the move carries no text of its own (the session's QA note is left as it was)."""
    _require(by, MOVE_PERMISSIONS[target], f"mark sessions {_label(target)}")
    if feedback is not None:
        _require(by, FIX_PERMISSION, "write developer feedback")
    if note is not None:
        # Reviewers may move to passed / issue anyway; this stops a developer who may only mark
        # fixed from rewriting the reviewer's note on the way.
        _require(by, REVIEW_PERMISSION, "write QA notes")
    with transaction.atomic():
        locked = _lock_reviewable(session)
        now = timezone.now()
        # Someone else's live claim first: that is why the move is refused, whatever its status.
        claims.decision_check(session=locked, by=by, now=now)
        from_status = locked.qa_status
        check_move(QA_MOVES, from_status, target, wording=QA_WORDING)
        fields = ["qa_status", "qa_status_by", "qa_status_at", "updated_at"]
        if note is not None and note != locked.qa_notes:
            locked.qa_notes, locked.qa_notes_by, locked.qa_notes_at = note, by, now
            fields += ["qa_notes", "qa_notes_by", "qa_notes_at"]
        if feedback is not None and feedback != locked.dev_feedback:
            locked.dev_feedback, locked.dev_feedback_by, locked.dev_feedback_at = feedback, by, now
            fields += ["dev_feedback", "dev_feedback_by", "dev_feedback_at"]
        if target == QAStatus.ISSUE and not locked.qa_notes.strip():
            raise NoteRequired("Write a QA note saying what is wrong before flagging an issue.")
        if target == QAStatus.FIXED and not _feedback_since_flagged(locked, from_status):
            raise FeedbackRequired(
                "Write developer feedback (what was changed, so QA can re-check it) before "
                "marking this session fixed."
            )
        claims.release_after_decision(session=locked, by=by, now=now)
        locked.qa_status, locked.qa_status_by, locked.qa_status_at = target, by, now
        locked.updated_at = now
        locked.save(update_fields=fields)
        # The history keeps what was said at this move: feedback for `fixed`, the note otherwise.
        said = (feedback if target == QAStatus.FIXED else note) or via
        QAHistory.objects.create(
            session=locked,
            kind=QAHistory.Kind.MOVE,
            from_status=from_status,
            to_status=target,
            by=by,
            at=now,
            note=said,
        )
        if target == QAStatus.ISSUE:
            signals.qa_issue_flagged.send(
                sender=ChatSession, session=locked, by=by, note=locked.qa_notes
            )
        if target == QAStatus.FIXED:
            signals.qa_session_fixed.send(
                sender=ChatSession, session=locked, by=by, feedback=locked.dev_feedback
            )
    copy_state(locked, session)
    return locked


def _feedback_since_flagged(locked: ChatSession, from_status: str) -> bool:
    """Feedback written for this issue: given with the move, or saved since it was flagged.

    Feedback left from an earlier fix of the same session does not count: it says what was
    changed then, not now. (`locked` already carries the feedback given with the move.)
    """
    if not locked.dev_feedback.strip():
        return False
    if from_status != QAStatus.ISSUE or locked.qa_status_at is None:
        return True
    return locked.dev_feedback_at is not None and locked.dev_feedback_at >= locked.qa_status_at


def qa_reopen_after_new_turns(
    *, session: ChatSession, now: datetime | None = None
) -> ChatSession | None:
    """A passed session the visitor wrote to again goes back to the queue (unchecked).

    Called by qa's receiver of `sessions_app.signals.visitor_turn_added`, in the transaction of
    the message when there is one. Nobody makes this move, so `by` is empty and the history row
    says why ("reopened: 6 new messages after review", counting the visitor's turns since the
    review). None when the session was not passed (any more) when locked.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if locked.is_deleted or QAStatus.UNCHECKED not in REOPEN_MOVES.get(locked.qa_status, ()):
            return None
        reviewed_at = locked.qa_status_at
        turns = ChatMessage.objects.filter(session=locked, role=MessageRole.VISITOR)
        if reviewed_at is not None:
            turns = turns.filter(created_at__gt=reviewed_at)
        # A message reported late with a time before the review is still one the reviewer did
        # not read: at least the turn that triggered this.
        count = max(turns.count(), 1)
        from_status = locked.qa_status
        locked.qa_status, locked.qa_status_by, locked.qa_status_at = QAStatus.UNCHECKED, None, now
        locked.updated_at = now
        locked.save(update_fields=["qa_status", "qa_status_by", "qa_status_at", "updated_at"])
        QAHistory.objects.create(
            session=locked,
            kind=QAHistory.Kind.MOVE,
            from_status=from_status,
            to_status=QAStatus.UNCHECKED,
            by=None,
            at=now,
            note=f"reopened: {count} new message{'s' if count != 1 else ''} after review",
        )
    copy_state(locked, session)
    return locked


def review_version(session: ChatSession) -> str:
    """What the review page was opened on: the QA status and when it was set (every move sets
    it), carried by the form so a decision on a stale page can be refused."""
    at = session.qa_status_at.isoformat() if session.qa_status_at else ""
    return f"{session.qa_status}@{at}"


_CHANGED_WORDS: dict[str, str] = {
    QAStatus.PASSED: "marked this passed",
    QAStatus.ISSUE: "flagged this as an issue",
    QAStatus.FIXED: "marked this fixed",
    QAStatus.UNCHECKED: "put this back in the queue",
}


def stale_message(locked: ChatSession) -> str:
    """ "X marked this passed at 14:02 since you opened it." for the row as it is now."""
    words = _CHANGED_WORDS.get(locked.qa_status, f"moved this to {locked.qa_status}")
    if locked.qa_status_by is None and locked.qa_status == QAStatus.UNCHECKED:
        who, words = "The visitor wrote again: leadchat", "reopened this"
    else:
        who = claims.person(locked.qa_status_by)
    at = f" at {claims.clock(locked.qa_status_at)}" if locked.qa_status_at else ""
    return (
        f"{who} {words}{at} since you opened it; nothing was changed. "
        "Read the page as it is now and decide again."
    )


def qa_mark_passed(
    *, session: ChatSession, by: User, note: str | None = None, via: str = ""
) -> ChatSession:
    """unchecked / fixed -> passed. `note` (when given) replaces the session's QA note."""
    return _move(session=session, by=by, target=QAStatus.PASSED, note=note, via=via)


def qa_mark_issue(
    *, session: ChatSession, by: User, note: str | None = None, via: str = ""
) -> ChatSession:
    """unchecked / passed / fixed -> issue. Needs a QA note (given here or already saved).

    Sends `qa_issue_flagged` once, inside the transaction: the notification email hangs off it.
    """
    return _move(session=session, by=by, target=QAStatus.ISSUE, note=note, via=via)


def qa_mark_fixed(*, session: ChatSession, by: User, feedback: str | None = None) -> ChatSession:
    """issue -> fixed, by a developer (admin role). `feedback` replaces the developer feedback."""
    return _move(session=session, by=by, target=QAStatus.FIXED, feedback=feedback)


def qa_move(
    *,
    session: ChatSession,
    by: User,
    to_status: str,
    note: str | None = None,
    feedback: str | None = None,
) -> ChatSession:
    """One move with whatever the form carried (QA note and/or developer feedback), atomically.

    For forms whose buttons carry the target status as a value; the checks are those of the
    `qa_mark_*` services (they share `_move`).
    """
    if to_status not in MOVE_PERMISSIONS:
        raise TransitionNotAllowed(f"Unknown QA status {to_status!r}.")
    return _move(session=session, by=by, target=to_status, note=note, feedback=feedback)


def qa_note_save(*, session: ChatSession, by: User, note: str) -> ChatSession:
    """Save the QA note without changing the status (a history row records it)."""
    _require(by, REVIEW_PERMISSION, "write QA notes")
    return _save_text(session=session, by=by, kind=QAHistory.Kind.NOTE, text=note)


def qa_feedback_save(*, session: ChatSession, by: User, feedback: str) -> ChatSession:
    """Save developer feedback without changing the status (a history row records it)."""
    _require(by, FIX_PERMISSION, "write developer feedback")
    return _save_text(session=session, by=by, kind=QAHistory.Kind.FEEDBACK, text=feedback)


def _save_text(*, session: ChatSession, by: User, kind: str, text: str) -> ChatSession:
    field = "qa_notes" if kind == QAHistory.Kind.NOTE else "dev_feedback"
    with transaction.atomic():
        locked = _lock_reviewable(session)
        if getattr(locked, field) == text:
            copy_state(locked, session)
            return locked  # nothing changed: no history row, no signal
        now = timezone.now()
        setattr(locked, field, text)
        setattr(locked, f"{field}_by", by)
        setattr(locked, f"{field}_at", now)
        locked.updated_at = now
        locked.save(update_fields=[field, f"{field}_by", f"{field}_at", "updated_at"])
        QAHistory.objects.create(
            session=locked,
            kind=kind,
            from_status=locked.qa_status,
            to_status=locked.qa_status,
            by=by,
            at=now,
            note=text,
        )
    copy_state(locked, session)
    return locked


# The QA panel's buttons: a move to one of these statuses, or "save" (the texts only).
REVIEW_SAVE = "save"
REVIEW_DECISIONS: tuple[str, ...] = (QAStatus.PASSED, QAStatus.ISSUE, QAStatus.FIXED, REVIEW_SAVE)


@dataclass(frozen=True)
class QAReview:
    """What one submit of the QA panel did (the console words its message from it)."""

    session: ChatSession
    moved_to: str | None  # the new QA status; None for "save"
    texts_saved: bool  # the QA note or the developer feedback changed


def qa_review_submit(
    *,
    session: ChatSession,
    by: User,
    decision: str,
    qa_note: str | None = None,
    dev_feedback: str | None = None,
    opened_version: str | None = None,
) -> QAReview:
    """One submit of the QA panel: a move (`decision` is a status) or "save", with its texts.

    `qa_note` / `dev_feedback` are None when the form did not carry them (a reviewer is not
    shown the feedback box); a text equal to the stored one is no write, so it needs no
    permission and leaves no history row. The permissions and the move are checked by the
    services this calls (`qa_move`, `qa_note_save`, `qa_feedback_save`); one transaction around
    them means a refusal half-way (the feedback after the note was saved) leaves nothing behind.

    `opened_version` is `review_version` of the session as the page showed it: a decision on a
    page whose session has moved since is refused (StaleDecision) with what changed. Saving the
    texts alone is no decision and goes through.
    """
    if decision not in REVIEW_DECISIONS:
        raise TransitionNotAllowed(f"Unknown QA action {decision!r}.")
    with transaction.atomic():
        # Compared with the row as locked now, not as the page showed it: a text changed by someone
        # else meanwhile is a write (and needs the permission), as it would be on any other path.
        locked = _lock_reviewable(session)
        if (
            decision != REVIEW_SAVE
            and opened_version is not None
            and opened_version != review_version(locked)
        ):
            raise StaleDecision(stale_message(locked))
        note = None if qa_note is None or qa_note == locked.qa_notes else qa_note
        feedback = (
            None if dev_feedback is None or dev_feedback == locked.dev_feedback else dev_feedback
        )
        if decision == REVIEW_SAVE:
            if note is not None:
                qa_note_save(session=locked, by=by, note=note)
            if feedback is not None:
                qa_feedback_save(session=locked, by=by, feedback=feedback)
            moved_to = None
        else:
            qa_move(session=locked, by=by, to_status=decision, note=note, feedback=feedback)
            moved_to = decision
    copy_state(locked, session)
    return QAReview(
        session=locked, moved_to=moved_to, texts_saved=note is not None or feedback is not None
    )
