"""QA's rows in a session's history (`sessions_app.history`), registered in QaConfig.ready()."""

from qa import selectors
from qa.models import QAHistory
from sessions_app.history import HistoryEntry
from sessions_app.models import ChatSession


def qa_history_entries(session: ChatSession, limit: int) -> list[HistoryEntry]:
    """Moves read "Unchecked → Issue"; a QA note or developer feedback saved alone, "saved"."""
    return [
        HistoryEntry(
            source="qa",
            at=row.at,
            by=row.by,
            what="QA status" if row.kind == QAHistory.Kind.MOVE else row.get_kind_display(),
            change=(
                f"{row.get_from_status_display()} → {row.get_to_status_display()}"
                if row.kind == QAHistory.Kind.MOVE
                else "added"
                if row.kind == QAHistory.Kind.ANNOTATION
                else "saved"
            ),
            note=row.note,
        )
        for row in selectors.session_qa_history(session, limit=limit)
    ]
