"""CSV export of sessions' QA results, streamed row by row in flat memory."""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

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
    "console_url",
]

# A cell starting with one of these is a formula to Excel / LibreOffice / Sheets: a visitor who
# types "=HYPERLINK(...)" as their name must not get code run on a reviewer's machine.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


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
        url,
    ]
    return [_cell(v) for v in values]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(sessions: Iterable[ChatSession]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for session in sessions:
        yield writer.writerow(session_row(session))


def qa_results_response(queryset) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        csv_lines(export_sessions(queryset)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="qa-results-{stamp}.csv"'
    return response
