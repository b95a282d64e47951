"""CSV export of sessions' QA results, streamed row by row in flat memory."""

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from leadchat import csvsafe
from qa.scorecards.export import SCORECARD_COLUMNS, scorecard_cells
from qa.selectors import export_sessions
from sessions_app.models import ChatSession

COLUMNS = [
    "session_id",
    "started_at",
    "site",
    "channel",
    "lead_name",
    "lead_email",
    "lead_phone",
    "completion_status",
    "archive_status",
    "message_count",
    "delivery_state",
    "qa_status",
    "qa_status_by",
    "qa_status_at",
    "qa_notes",
    "qa_notes_by",
    "qa_notes_at",
    "dev_feedback",
    "dev_feedback_by",
    "dev_feedback_at",
    # qa.scorecards: every reviewer's scorecard and the annotations (see scorecard_cells).
    *SCORECARD_COLUMNS,
    "console_url",
]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    return str(value)


def _user(user: object) -> str:
    return getattr(user, "username", "") if user is not None else ""


def session_row(session: ChatSession) -> list[str]:
    url = settings.PUBLIC_BASE_URL + reverse(
        "admin:sessions_app_chatsession_change", args=[session.pk]
    )
    values = [
        session.public_id,
        session.started_at,
        session.site.name if session.site else "",
        session.channel,
        session.lead_name,
        session.lead_email,
        session.lead_phone,
        session.completion_status,
        session.archive_status,
        session.message_count,
        session.delivery_state,
        session.qa_status,
        _user(session.qa_status_by),
        session.qa_status_at,
        session.qa_notes,
        _user(session.qa_notes_by),
        session.qa_notes_at,
        session.dev_feedback,
        _user(session.dev_feedback_by),
        session.dev_feedback_at,
        *scorecard_cells(session),
        url,
    ]
    return [_cell(v) for v in values]


def csv_lines(sessions: Iterable[ChatSession]) -> Iterator[str]:
    """Quoted, formula-safe CSV (leadchat.csvsafe: a visitor who types "=HYPERLINK(...)" as
    their name must not get code run on a reviewer's machine)."""
    rows = (session_row(session) for session in sessions)
    return csvsafe.csv_lines(itertools.chain([COLUMNS], rows))


def qa_results_response(queryset) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        csv_lines(export_sessions(queryset)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="qa-results-{stamp}.csv"'
    return response
