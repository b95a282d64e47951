"""QA's rows in a session's history (`sessions_app.history`), registered in QaConfig.ready()."""

from qa import selectors
from qa.models import QAHistory
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
