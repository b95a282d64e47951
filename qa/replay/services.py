"""Every change of a replay goes through these functions: asked for, claimed, finished.

A replay is asked for when a session is marked fixed (`qa_session_fixed`, in the move's own
transaction, so the fix and its replay commit together: a crash between them cannot lose the
re-test) or from the console. The worker (`manage.py deliver_webhooks`, job `qa-replay`) claims
it with `sessions_app.transitions.claim`, as the Messenger inbox does: one short transaction,
SKIP LOCKED on PostgreSQL, a lease (REPLAY_LEASE_SECONDS, longer than the replay's time budget
plus one agent call, so a live worker is never overtaken) and a claim token that fences the
final write. The run itself (`qa.replay.sandbox`) writes nothing; its messages and outcome are
stored in one transaction at the end, only while the claim still holds. So a worker killed
mid-replay leaves a `running` row whose lease runs out; another worker runs it again from the
start, and two never run one replay at once (nor two replays of one session: the unique
"one open replay per session" constraint).

The Replay row is its own history (who asked, when, when it ran, how it ended and why), shown
in the review page's Replays box, as a delivery's attempts are in its box; what QA then decides
from a replay is a QA move with its QAHistory row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from qa.replay.models import (
    REPLAY_MOVES,
    Replay,
    ReplayMessage,
    ReplayStatus,
    ReplayTrigger,
)
from qa.replay.sandbox import DraftMessage, sandbox_run
from qa.services import can_fix, can_review
from sessions_app.models import ChatSession, MessageRole
from sessions_app.transitions import MoveWording, check_move, claim, lock
from widget.backends.version import AgentVersion

logger = logging.getLogger(__name__)

JOB_NAME = "qa-replay"
REPLAY_WORDING = MoveWording("a replay")


def can_replay(user: User | AnonymousUser | None) -> bool:
    """QA reviewers and admins (developers) may ask for a replay."""
    return can_review(user) or can_fix(user)


def replay_request(
    *, session: ChatSession, by: User | None, trigger: str = ReplayTrigger.MANUAL
) -> tuple[Replay, bool]:
    """Queue a replay of `session`: (the replay, True), or (the open one, False) when one is
    already queued or running.

    A session in the trash gets a replay recorded as failed, with the reason: the console
    shows why nothing ran instead of an error page. `by` is None only for the automatic replay
    of a fix made without a user (a command).
    """
    if trigger == ReplayTrigger.MANUAL and not (by is not None and can_replay(by)):
        raise PermissionDenied("You are not allowed to replay sessions.")
    now = timezone.now()
    with transaction.atomic():
        locked = lock(session)  # one request at a time per session: the open check holds
        existing = Replay.objects.filter(
            session=locked, status__in=[ReplayStatus.QUEUED, ReplayStatus.RUNNING]
        ).first()
        if existing is not None:
            return existing, False
        if locked.is_deleted:
            failed = Replay.objects.create(
                session=locked,
                trigger=trigger,
                requested_by=by,
                requested_at=now,
                status=ReplayStatus.FAILED,
                finished_at=now,
                reason="The session is in the trash; restore it before replaying it.",
            )
            return failed, True
        queued = Replay.objects.create(
            session=locked, trigger=trigger, requested_by=by, requested_at=now
        )
        return queued, True


def _due(now: datetime) -> Q:
    return Q(status=ReplayStatus.QUEUED) | Q(status=ReplayStatus.RUNNING, lease_until__lt=now)


def replays_claim(*, worker: str, limit: int, now: datetime | None = None) -> list[Replay]:
    """Claim up to `limit` due replays (queued, or running with a lapsed lease)."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    values = {
        "status": ReplayStatus.RUNNING,
        "claim_token": token,
        "claimed_by": worker[:100],
        "lease_until": now + timedelta(seconds=settings.REPLAY_LEASE_SECONDS),
        "started_at": now,
        "attempts": F("attempts") + 1,
    }
    candidates = Replay.objects.filter(_due(now)).order_by("requested_at", "id")
    if not claim(candidates, due=_due(now), values=values, limit=limit):
        return []
    return list(
        Replay.objects.filter(claim_token=token)
        .select_related("session", "session__site")
        .order_by("requested_at", "id")
    )


def replay_job_run(worker: str, limit: int) -> int:
    """The worker job: claim replays and run each; returns how many were claimed."""
    # A replay is long (a whole conversation): a few per pass keep the outbox's turn short.
    replays = replays_claim(worker=worker, limit=min(limit, settings.REPLAY_BATCH_SIZE))
    for replay in replays:
        try:
            replay_process(replay)
        except Exception as exc:
            # Recorded on the row and tried again (the lease is released at once); after
            # DELIVERY_MAX_CRASHES claims it fails, like a Messenger event that kills workers.
            logger.exception("Replay %s raised; recorded on it.", replay.pk)
            _release_after_crash(replay, f"{type(exc).__name__}: {exc}")
    return len(replays)


def _held(replay: Replay) -> Replay | None:
    """The replay's row, locked, while this worker's claim still holds it."""
    return (
        Replay.objects.select_for_update()
        .filter(pk=replay.pk, status=ReplayStatus.RUNNING, claim_token=replay.claim_token)
        .first()
    )


def _release_after_crash(replay: Replay, error: str) -> None:
    with transaction.atomic():
        held = _held(replay)
        if held is None:
            return
        if held.attempts >= settings.DELIVERY_MAX_CRASHES:
            _finish(held, status=ReplayStatus.FAILED, reason=f"The replay crashed: {error}")
            return
        held.lease_until = timezone.now()
        held.reason = error[:2000]
        held.save(update_fields=["lease_until", "reason"])


def _finish(
    held: Replay,
    *,
    status: str,
    reason: str = "",
    drafts: list[DraftMessage] | None = None,
    tokens: int = 0,
    version: AgentVersion | None = None,
    visitor_turns: int = 0,
) -> None:
    """Store the outcome on a locked, held replay: its status, reason and messages."""
    check_move(REPLAY_MOVES, held.status, status, wording=REPLAY_WORDING)
    held.status = status
    held.reason = reason[:4000]
    held.finished_at = timezone.now()
    held.claim_token = held.claimed_by = ""
    held.lease_until = None
    held.tokens_used = tokens
    held.visitor_turns = visitor_turns
    if version is not None:
        held.agent_backend = version.backend
        held.agent_model = version.model
        held.agent_config_hash = version.config_hash
    held.save(
        update_fields=[
            "status",
            "reason",
            "finished_at",
            "claim_token",
            "claimed_by",
            "lease_until",
            "tokens_used",
            "visitor_turns",
            "agent_backend",
            "agent_model",
            "agent_config_hash",
        ]
    )
    if drafts:
        ReplayMessage.objects.bulk_create(
            ReplayMessage(
                replay=held,
                position=position,
                role=draft.role,
                text=draft.text,
                metadata=draft.metadata,
                original=draft.original,
            )
            for position, draft in enumerate(drafts)
        )


def _fail_held(replay: Replay, reason: str) -> None:
    with transaction.atomic():
        held = _held(replay)
        if held is not None:
            _finish(held, status=ReplayStatus.FAILED, reason=reason)


def replay_process(replay: Replay) -> None:
    """Run one claimed replay in the sandbox and store its outcome (if the claim still holds)."""
    if replay.attempts > settings.DELIVERY_MAX_CRASHES:
        _fail_held(replay, "Its worker stopped mid-way every time (killed?); not tried again.")
        return
    session = (
        ChatSession.objects.select_related("site").filter(pk=replay.session_id).first()
        if replay.session_id is not None
        else None
    )
    if session is None:
        _fail_held(replay, "The session no longer exists (it was erased or purged).")
        return
    if session.is_deleted:
        _fail_held(replay, "The session is in the trash; restore it before replaying it.")
        return
    if session.site is None:
        _fail_held(replay, "The session has no site, so there is no agent to replay against.")
        return
    limit = int(settings.REPLAY_MAX_TURNS)
    turns = list(
        session.messages.filter(role=MessageRole.VISITOR).order_by("created_at", "id")[: limit + 1]
    )
    if not turns:
        _fail_held(replay, "The session has no visitor messages to replay.")
        return
    if len(turns) > limit:
        _fail_held(
            replay,
            f"The session has more than {limit} visitor messages (REPLAY_MAX_TURNS); "
            "a replay that long is refused rather than cut.",
        )
        return

    # Outside any transaction: the agent may take the whole time budget.
    outcome = sandbox_run(
        sandbox_id=f"replay-{replay.public_id}",
        session=session,
        site=session.site,
        visitor_turns=turns,
        time_budget=float(settings.REPLAY_TIME_BUDGET_SECONDS),
        token_budget=int(settings.REPLAY_TOKEN_BUDGET),
    )

    with transaction.atomic():
        held = _held(replay)
        if held is None:
            logger.warning("Replay %s: claim lost while it ran; its outcome is dropped.", replay.pk)
            return
        _finish(
            held,
            status=ReplayStatus.FAILED if outcome.failure else ReplayStatus.DONE,
            reason=outcome.failure,
            drafts=outcome.messages,
            tokens=outcome.tokens,
            version=outcome.version,
            visitor_turns=len(turns),
        )
