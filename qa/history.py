"""QA's rows in a session's history (`sessions_app.history`), registered in QaConfig.ready():
the QA history table's rows, and the replays and the sampling decision of the session."""

from qa import selectors
from qa.models import QAHistory
from qa.replay.models import Replay, ReplayStatus, ReplayTrigger
from qa.sampling.display import sample_reasons_label, session_sample
from sessions_app.history import HistoryEntry
from sessions_app.models import ChatSession

# Claims and assignments say what happened in their note ("assigned to Quinn"): it is the change.
_NOTE_IS_THE_CHANGE = {QAHistory.Kind.CLAIM, QAHistory.Kind.ASSIGN}


def _change(row: QAHistory) -> str:
    if row.kind == QAHistory.Kind.MOVE:
        return f"{row.get_from_status_display()} → {row.get_to_status_display()}"
    if row.kind in _NOTE_IS_THE_CHANGE:
        return row.note
    if row.kind == QAHistory.Kind.ANNOTATION:
        return "added"
    return "saved"


def qa_history_entries(session: ChatSession, limit: int) -> list[HistoryEntry]:
    """Moves read "Unchecked → Issue"; a QA note or developer feedback saved alone, "saved";
    a claim or an assignment, what its note says ("assigned to quinn-qa")."""
    return [
        HistoryEntry(
            source="qa",
            at=row.at,
            by=row.by,
            what="QA status" if row.kind == QAHistory.Kind.MOVE else row.get_kind_display(),
            change=_change(row),
            note="" if row.kind in _NOTE_IS_THE_CHANGE else row.note,
        )
        for row in selectors.session_qa_history(session, limit=limit)
    ]


_REPLAY_REQUESTS: dict[str, str] = {
    ReplayTrigger.FIXED: "queued (marked fixed)",
    ReplayTrigger.MANUAL: "asked for",
}


def _replay_entries(replay: Replay) -> list[HistoryEntry]:
    short = str(replay.public_id)[:8]
    entries = [
        HistoryEntry(
            source="qa",
            at=replay.requested_at,
            by=replay.requested_by,
            what="Replay",
            change=f"{short} {_REPLAY_REQUESTS.get(replay.trigger, replay.trigger)}",
        )
    ]
    if replay.finished_at is not None:
        if replay.status == ReplayStatus.DONE:
            turns = replay.visitor_turns
            note = f"{turns} visitor turn{'s' if turns != 1 else ''} replayed" + (
                f" against {replay.agent_version_label}" if replay.agent_version_label else ""
            )
        else:
            note = replay.reason
        entries.append(
            HistoryEntry(
                source="qa",
                at=replay.finished_at,
                by=None,
                what="Replay",
                change=f"{short} {replay.get_status_display().lower()}",
                note=note,
            )
        )
    return entries


def qa_replay_sampling_entries(session: ChatSession, limit: int) -> list[HistoryEntry]:
    """Each replay's request and outcome ("1a2b3c4d queued (marked fixed)", "1a2b3c4d done"
    with the agent version it ran against, or "failed" with the reason) and the sampling
    decision ("sampled": why; "not sampled": outside the random share). At most two queries; the
    verify / re-flag made from a replay is a QA move of its own, its note naming the replay."""
    replays = session.replays.select_related("requested_by").order_by("-requested_at", "-id")
    entries = [entry for replay in replays[:limit] for entry in _replay_entries(replay)]
    sample = session_sample(session)  # joined by the review page's query: no query there
    if sample is not None:
        entries.append(
            HistoryEntry(
                source="qa",
                at=sample.decided_at,
                by=None,
                what="QA sampling",
                change="sampled" if sample.sampled else "not sampled",
                note=sample_reasons_label(sample),
            )
        )
    return entries
