"""A session's history as one list: every move of every app that keeps one, newest first.

Each app keeps its own history table, written by its own services (`LifecycleHistory` here,
`qa.QAHistory` in qa). sessions_app must not import qa (dependencies point widget ->
sessions_app <- qa), so apps add their rows through a registered source instead: a function
`source(session, limit)` returning that app's newest `limit` entries as `HistoryEntry`s, in one
query whatever their number. qa registers its source in `QaConfig.ready()`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import TextChoices

from accounts.models import User
from sessions_app.models import (
    ArchiveStatus,
    ChatSession,
    HoldStatus,
    HumanRequestStatus,
    LifecycleHistory,
    TrashStatus,
)

# One page shows at most this many entries (each source is asked for as many).
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a session, as both history displays show it (plain text: templates escape)."""

    source: str  # the app's name for its rows: "lifecycle", "qa"
    at: datetime
    by: User | None
    what: str  # what changed: "Archive status", "Trash", "QA status", "QA note", ...
    change: str  # "Active → Archived", "Unchecked → Issue", "saved"
    note: str = ""


HistorySource = Callable[[ChatSession, int], Iterable[HistoryEntry]]

_sources: list[HistorySource] = []


def register_history_source(source: HistorySource) -> HistorySource:
    """Add `source` to every session's history (once, however often an app's ready() runs)."""
    if source not in _sources:
        _sources.append(source)
    return source


def session_history(session: ChatSession, *, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The session's history from every source, newest first: one query per source."""
    entries = [entry for source in _sources for entry in source(session, limit)]
    # Stable: entries of one source at the same instant keep the order their source gave them.
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


_LIFECYCLE_STATUSES: dict[str, type[TextChoices]] = {
    LifecycleHistory.Kind.ARCHIVE: ArchiveStatus,
    LifecycleHistory.Kind.TRASH: TrashStatus,
    LifecycleHistory.Kind.TAKEOVER: HoldStatus,
    LifecycleHistory.Kind.HUMAN: HumanRequestStatus,
}


def _status_label(kind: str, status: str) -> str:
    choices = _LIFECYCLE_STATUSES.get(kind)
    return choices(status).label if choices and status in choices.values else status


@register_history_source
def lifecycle_history_entries(session: ChatSession, limit: int) -> list[HistoryEntry]:
    rows = session.lifecycle_history.select_related("by").order_by("-at", "-id")[:limit]
    return [
        HistoryEntry(
            source="lifecycle",
            at=row.at,
            by=row.by,
            what=row.get_kind_display(),
            change=(
                f"{_status_label(row.kind, row.from_status)} → "
                f"{_status_label(row.kind, row.to_status)}"
            ),
        )
        for row in rows
    ]
