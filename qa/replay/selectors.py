"""Reads of replays: a session's latest ones, and a replay beside its original, turn by turn."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import OuterRef, QuerySet, Subquery

from qa.replay.models import Replay, ReplayMessage, ReplayStatus, ReplayTrigger
from qa.selectors import TRANSCRIPT_LIMIT
from sessions_app.models import ChatMessage, ChatSession, MessageRole

LATEST_FIELDS = ("pk", "status", "trigger", "requested_at", "reason")


def latest_replay_annotations() -> dict[str, Subquery]:
    """The session's newest replay as columns of the session's own row (`latest_replay_<f>`):
    the review page's box costs no query of its own (its query count is asserted)."""
    newest = Replay.objects.filter(session=OuterRef("pk")).order_by("-requested_at", "-id")
    return {f"latest_replay_{name}": Subquery(newest.values(name)[:1]) for name in LATEST_FIELDS}


@dataclass(frozen=True)
class LatestReplay:
    pk: int
    status: str
    trigger: str
    requested_at: object
    reason: str

    @property
    def status_label(self) -> str:
        return ReplayStatus(self.status).label

    @property
    def trigger_label(self) -> str:
        return ReplayTrigger(self.trigger).label


def latest_replay(session: ChatSession) -> LatestReplay | None:
    """The newest replay from the annotations, or one query when the row has none of them."""
    if not hasattr(session, "latest_replay_pk"):
        row = (
            Replay.objects.filter(session=session)
            .order_by("-requested_at", "-id")
            .values(*LATEST_FIELDS)
            .first()
        )
        return LatestReplay(**row) if row else None
    if session.latest_replay_pk is None:
        return None
    return LatestReplay(
        **{name: getattr(session, f"latest_replay_{name}") for name in LATEST_FIELDS}
    )


def replays_for_console() -> QuerySet[Replay]:
    return Replay.objects.select_related("session", "session__site", "requested_by")


def replay_for_page(pk: int) -> Replay | None:
    return (
        Replay.objects.select_related("session", "session__site", "requested_by")
        .filter(pk=pk)
        .first()
    )


@dataclass
class TurnPair:
    """One visitor turn with what the agent answered then and what it answers now."""

    visitor: ChatMessage | None  # None for the opening (the greeting, before any turn)
    original: list[ChatMessage] = field(default_factory=list)
    replayed: list[ReplayMessage] = field(default_factory=list)
    replayed_at_all: bool = False  # the replay reached this turn

    @property
    def changed(self) -> bool:
        before = [m.text.strip() for m in self.original if m.role == MessageRole.AI]
        return self.replayed_at_all and before != [m.text.strip() for m in self.replayed]


def side_by_side(replay: Replay) -> list[TurnPair]:
    """The original transcript (bounded) grouped by visitor turn, each with the replay's
    replies to that turn: two queries whatever the length."""
    session = replay.session
    original = (
        list(session.messages.order_by("created_at", "id")[:TRANSCRIPT_LIMIT])
        if session is not None
        else []
    )
    replayed: dict[int | None, list[ReplayMessage]] = {}
    reached: set[int | None] = set()
    for answer in replay.messages.order_by("position"):
        if answer.role == MessageRole.VISITOR:
            reached.add(answer.original_id)
        else:
            replayed.setdefault(answer.original_id, []).append(answer)
    pairs = [TurnPair(visitor=None)]
    for message in original:
        if message.role == MessageRole.VISITOR:
            pairs.append(
                TurnPair(
                    visitor=message,
                    replayed=replayed.get(message.pk, []),
                    replayed_at_all=message.pk in reached,
                )
            )
        elif message.role != MessageRole.SYSTEM:
            pairs[-1].original.append(message)
    if not pairs[0].original:
        pairs.pop(0)
    return pairs
