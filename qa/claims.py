"""Review claims and assignments: who is reviewing a session now, and who it is given to.

Opening a session's review page claims it for `CLAIM_DURATION` (the page's heartbeat renews it);
while the claim lives nobody else may decide the session (`decision_check`, called by every QA
move in `qa.services`). Admins assign sessions to a reviewer; "My queue" lists what is claimed
by or assigned to the signed-in reviewer. Every write here locks the session row first, the
same lock the QA moves take, so a claim and a decision by someone else never interleave.
"""

from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import User
from qa.models import QAHistory, ReviewClaim
from sessions_app.errors import DomainError, SessionDeleted
from sessions_app.models import ChatSession
from sessions_app.transitions import copy_state, lock

# Long enough to read a long transcript and write a note; the page renews it every
# HEARTBEAT_SECONDS, so it only runs out once the page is closed (or the laptop sleeps).
CLAIM_DURATION = timedelta(minutes=10)
HEARTBEAT_SECONDS = 120
ASSIGN_PERMISSION = "qa.assign_reviewclaim"


class ClaimHeld(DomainError):
    """Someone else is reviewing this session (their claim has not run out)."""

    def __init__(self, message: str, *, holder: User, until: datetime) -> None:
        super().__init__(message)
        self.holder = holder
        self.until = until


def person(user: User | None) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def clock(at: datetime) -> str:
    """HH:MM in the site's TIME_ZONE: what the reviewer's wall clock reads."""
    return timezone.localtime(at).strftime("%H:%M")


def can_claim(user: User | AnonymousUser | None) -> bool:
    from qa.services import can_fix, can_review

    return can_review(user) or can_fix(user)


def can_assign(user: User | AnonymousUser | None) -> bool:
    return user is not None and user.is_active and user.has_perm(ASSIGN_PERMISSION)


def live_holder(claim: ReviewClaim | None, now: datetime) -> User | None:
    """Who holds `claim` at `now`; None once it ran out (or was released)."""
    if claim is None or claim.claimed_by_id is None or claim.claimed_until is None:
        return None
    return claim.claimed_by if claim.claimed_until > now else None


def session_claim(session: ChatSession) -> ReviewClaim | None:
    return (
        ReviewClaim.objects.select_related("claimed_by", "assigned_to")
        .filter(session_id=session.pk)
        .first()
    )


def held_by_other_message(holder: User, until: datetime) -> str:
    return (
        f"Being reviewed by {person(holder)} (until {clock(until)}): "
        "you cannot decide this session meanwhile."
    )


def decision_check(*, session: ChatSession, by: User, now: datetime) -> None:
    """Refuse a decision on a session someone else has claimed. Call with the session locked."""
    claim = ReviewClaim.objects.select_related("claimed_by").filter(session_id=session.pk).first()
    holder = live_holder(claim, now)
    if holder is not None and claim is not None and holder.pk != by.pk:
        assert claim.claimed_until is not None
        raise ClaimHeld(
            held_by_other_message(holder, claim.claimed_until),
            holder=holder,
            until=claim.claimed_until,
        )


def release_after_decision(*, session: ChatSession, by: User, now: datetime) -> None:
    """The decision ends the decider's claim: the next reviewer need not wait 10 minutes.

    Part of the decision (its history row says what happened), so no row of its own.
    """
    ReviewClaim.objects.filter(session_id=session.pk, claimed_by_id=by.pk).update(
        claimed_by=None, claimed_until=None
    )


def _lock_session(session: ChatSession) -> ChatSession:
    locked = lock(session)
    if locked.is_deleted:
        raise SessionDeleted("This session is in the trash; restore it before reviewing it.")
    return locked


def qa_claim(*, session: ChatSession, by: User, now: datetime | None = None) -> datetime:
    """Claim `session` for `by` for CLAIM_DURATION, or renew `by`'s own claim (the heartbeat);
    returns when the claim ends.

    Raises ClaimHeld while someone else's claim lives. The session row is locked first, so of two
    reviewers opening the same session at once exactly one gets it (the second waits for the
    first's commit and then sees its claim). A new claim writes a QAHistory row; a renewal does
    not (the page renews every two minutes: the history would drown in them).
    """
    if not can_claim(by):
        raise PermissionDenied("You are not allowed to review sessions.")
    now = now or timezone.now()
    until = now + CLAIM_DURATION
    # A renewal is one conditional UPDATE (the heartbeat's whole cost). Its WHERE names the
    # holder and a live claim, so it cannot revive a claim someone else has taken over since:
    # that writer holds the row, and PostgreSQL re-checks the WHERE after its commit.
    if ReviewClaim.objects.filter(
        session_id=session.pk, claimed_by_id=by.pk, claimed_until__gt=now
    ).update(claimed_until=until):
        return until
    with transaction.atomic():
        locked = _lock_session(session)
        claim = ReviewClaim.objects.select_related("claimed_by").filter(session=locked).first()
        holder = live_holder(claim, now)
        if holder is not None and holder.pk != by.pk:
            assert claim is not None and claim.claimed_until is not None
            raise ClaimHeld(
                held_by_other_message(holder, claim.claimed_until),
                holder=holder,
                until=claim.claimed_until,
            )
        renewal = holder is not None
        if claim is None:
            claim = ReviewClaim(session=locked)
        claim.claimed_by, claim.claimed_until = by, until
        claim.save()
        if not renewal:
            QAHistory.objects.create(
                session=locked,
                kind=QAHistory.Kind.CLAIM,
                from_status=locked.qa_status,
                to_status=locked.qa_status,
                by=by,
                at=now,
                note=f"claimed for review until {clock(until)}",
            )
    copy_state(locked, session)
    return until


def reviewers(limit: int = 200) -> list[User]:
    """Who an admin may assign sessions to: active QA reviewers and admins, by name."""
    from accounts.models import Role

    return list(
        User.objects.filter(is_active=True, role__in=[Role.QA, Role.ADMIN]).order_by("username")[
            :limit
        ]
    )


def qa_assign(
    *, session: ChatSession, to: User | None, by: User, now: datetime | None = None
) -> ReviewClaim:
    """Assign `session` to reviewer `to` (None: take the assignment away), by an admin.

    An assignment is a to-do, not a lock: it puts the session in `to`'s "My queue"; whoever opens
    it first still claims it. Assigning it to whom it already is assigned writes nothing.
    """
    if not can_assign(by):
        raise PermissionDenied("You are not allowed to assign sessions.")
    if to is not None and not can_claim(to):
        raise DomainError(f"{person(to)} cannot review sessions: assign it to a QA reviewer.")
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock_session(session)
        claim, _ = ReviewClaim.objects.get_or_create(session=locked)
        if claim.assigned_to_id == (to.pk if to is not None else None):
            copy_state(locked, session)
            return claim
        claim.assigned_to, claim.assigned_by, claim.assigned_at = to, by, now
        claim.save(update_fields=["assigned_to", "assigned_by", "assigned_at"])
        QAHistory.objects.create(
            session=locked,
            kind=QAHistory.Kind.ASSIGN,
            from_status=locked.qa_status,
            to_status=locked.qa_status,
            by=by,
            at=now,
            note=f"assigned to {person(to)}" if to is not None else "assignment removed",
        )
    copy_state(locked, session)
    return claim


# --- reads --------------------------------------------------------------------------------------


def claimed_by_other_expression(user_pk: int, now: datetime) -> Exists:
    """True for sessions with a live claim of someone other than the user (review next skips
    them)."""
    return Exists(
        ReviewClaim.objects.filter(session=OuterRef("pk"), claimed_until__gt=now).exclude(
            claimed_by_id=user_pk
        )
    )


def my_queue_expression(user_pk: int, now: datetime) -> Exists:
    """Sessions claimed by the user (live) or assigned to them: the "My queue" filter."""
    return Exists(
        ReviewClaim.objects.filter(session=OuterRef("pk")).filter(
            Q(claimed_by_id=user_pk, claimed_until__gt=now) | Q(assigned_to_id=user_pk)
        )
    )


def list_claim_holder_expression(now: datetime) -> Subquery:
    """Who holds a live claim on each listed session (a username, or NULL): one subquery on the
    unique session key, no query per row."""
    return Subquery(
        ReviewClaim.objects.filter(session=OuterRef("pk"), claimed_until__gt=now).values(
            "claimed_by__username"
        )[:1]
    )
