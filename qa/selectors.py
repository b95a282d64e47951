"""Reads of the QA console, written once with their joins and annotations (no per-row queries)."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import Combinable

from qa.models import QAHistory
from sessions_app.models import AutomationError, ChatMessage, ChatSession, QAStatus
from sessions_app.selectors import error_count_subquery

# A transcript longer than this is cut on the change view (with a note): one page must stay
# bounded whatever a runaway bot did to a session.
TRANSCRIPT_LIMIT = 1000
ERRORS_LIMIT = 50
HISTORY_LIMIT = 200
DEFAULT_ORDERING = ("-started_at", "-id")


def has_errors_expression() -> Exists:
    return Exists(AutomationError.objects.filter(session=OuterRef("pk")))


def console_sessions() -> QuerySet[ChatSession]:
    """Sessions the console lists: everything not in the trash, with the site joined."""
    return (
        ChatSession.objects.not_deleted()
        .select_related("site")
        .annotate(error_count=error_count_subquery(unresolved_only=False))
    )


def session_transcript(session: ChatSession, limit: int = TRANSCRIPT_LIMIT) -> list[ChatMessage]:
    return list(session.messages.order_by("created_at", "id")[:limit])


def session_qa_history(session: ChatSession, limit: int = HISTORY_LIMIT) -> list[QAHistory]:
    return list(session.qa_history.select_related("by").order_by("-at", "-id")[:limit])


def session_automation_errors(
    session: ChatSession, limit: int = ERRORS_LIMIT
) -> list[AutomationError]:
    return list(session.automation_errors.order_by("-created_at", "-id")[:limit])


def session_for_review(pk: Any) -> ChatSession | None:
    """The change view's session, with every user it names joined in one query."""
    return (
        ChatSession.objects.select_related(
            "site", "qa_status_by", "qa_notes_by", "dev_feedback_by", "archived_by"
        )
        .filter(pk=pk)
        .first()
    )


def next_unchecked_session(
    queryset: QuerySet[ChatSession], *, after: ChatSession, ordering: Sequence[str | Combinable]
) -> ChatSession | None:
    """The next unchecked session of `queryset` (the reviewer's current filter) after `after`.

    With the default newest-first order the next one is the first unchecked session older than
    `after` (keyset: indexed, no OFFSET); when there is none, the queue wraps to the newest one
    left. With any other order the first unchecked session in that order is next.
    """
    unchecked = queryset.filter(qa_status=QAStatus.UNCHECKED).exclude(pk=after.pk)
    # The admin repeats the queryset's own ordering after its own: compare without repeats.
    ordering = tuple(dict.fromkeys(str(part) for part in ordering))
    if ordering in {DEFAULT_ORDERING, ("-started_at", "-pk")}:
        older = unchecked.filter(
            Q(started_at__lt=after.started_at) | Q(started_at=after.started_at, pk__lt=after.pk)
        ).order_by(*DEFAULT_ORDERING)
        following = older.first()
        if following is not None:
            return following
        return unchecked.order_by(*DEFAULT_ORDERING).first()
    return unchecked.order_by(*ordering).first()


def export_sessions(queryset: QuerySet[ChatSession]) -> Iterable[ChatSession]:
    """Sessions for the QA results export, streamed in chunks with every named user joined and
    the scorecards and annotations prefetched per chunk (a fixed number of queries per chunk)."""
    from qa.scorecards.selectors import export_prefetches

    return (
        queryset.select_related("site", "qa_status_by", "qa_notes_by", "dev_feedback_by")
        .prefetch_related(*export_prefetches())
        .iterator(chunk_size=2000)
    )
