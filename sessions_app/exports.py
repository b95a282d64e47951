"""Session exports as CSV or JSON Lines, one row per session, streamed in flat memory.

Rows come from `QuerySet.iterator(chunk_size=...)` (a server-side cursor on PostgreSQL) and are
encoded one at a time by generators, so an export of a million sessions holds one chunk in
memory, not the result. With the transcript, messages are prefetched per chunk (one query per
chunk, never one per session). The API's streaming responses and the `export_sessions` command
share these generators.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.renderers import BaseRenderer

from leadchat import csvsafe
from sessions_app.leads_selectors import Lead
from sessions_app.models import ChatMessage, ChatSession
from sessions_app.selectors import error_count_subquery

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _ExportCounts(TypedDict):
    error_total: int


CHUNK_SIZE = 1000
CSV = "csv"
JSONL = "jsonl"
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSONL: "application/jsonl; charset=utf-8"}

COLUMNS = [
    "id",
    "started_at",
    "last_activity_at",
    "ended_at",
    "site",
    "channel",
    "page_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "completion_status",
    "archive_status",
    "deleted_at",
    "lead_name",
    "lead_email",
    "email_quality",
    "lead_phone",
    "lead_captured_at",
    "lead_data",
    "lead_consent_text",
    "lead_declined_reason",
    "message_count",
    "ai_engaged",
    "delivery_state",
    "qa_status",
    "qa_notes",
    "dev_feedback",
    "error_count",
]
TRANSCRIPT_COLUMN = "transcript"


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def export_queryset(
    qs: QuerySet[ChatSession], *, transcript: bool
) -> QuerySet[WithAnnotations[ChatSession, _ExportCounts]]:
    """Add what an export row needs to a filtered session queryset (from `sessions_filter`)."""
    # Every error the session had, resolved or not (sessions_filter's error_count counts only
    # the open ones).
    counted = qs.annotate(error_total=error_count_subquery(unresolved_only=False))
    if transcript:
        counted = counted.prefetch_related(
            Prefetch(
                "messages",
                queryset=ChatMessage.objects.order_by("created_at", "id").only(
                    "session_id", "role", "text", "created_at"
                ),
            )
        )
    return counted


def export_rows(
    qs: QuerySet[ChatSession], *, tz: ZoneInfo, transcript: bool = False
) -> Iterator[dict[str, Any]]:
    """One dict per session, times as ISO 8601 in `tz`; a generator over a DB cursor."""
    for session in export_queryset(qs, transcript=transcript).iterator(chunk_size=CHUNK_SIZE):
        row: dict[str, Any] = {
            "id": str(session.public_id),
            "started_at": _iso(session.started_at, tz),
            "last_activity_at": _iso(session.last_activity_at, tz),
            "ended_at": _iso(session.ended_at, tz),
            "site": session.site.name if session.site is not None else "",
            "channel": session.channel,
            "page_url": session.page_url,
            "referrer": session.referrer,
            "utm_source": session.utm_source,
            "utm_medium": session.utm_medium,
            "utm_campaign": session.utm_campaign,
            "utm_term": session.utm_term,
            "utm_content": session.utm_content,
            "completion_status": session.completion_status,
            "archive_status": session.archive_status,
            "deleted_at": _iso(session.deleted_at, tz),
            "lead_name": session.lead_name,
            "lead_email": session.lead_email,
            "email_quality": session.email_quality,
            "lead_phone": session.lead_phone,
            "lead_captured_at": _iso(session.lead_captured_at, tz),
            "lead_data": session.lead_data,
            "lead_consent_text": session.lead_consent_text,
            "lead_declined_reason": session.lead_declined_reason,
            "message_count": session.message_count,
            "ai_engaged": session.ai_engaged,
            "delivery_state": session.delivery_state,
            "qa_status": session.qa_status,
            "qa_notes": session.qa_notes,
            "dev_feedback": session.dev_feedback,
            "error_count": session.error_total,
        }
        if transcript:
            row[TRANSCRIPT_COLUMN] = [
                {"role": m.role, "text": m.text, "created_at": _iso(m.created_at, tz)}
                for m in session.messages.all()
            ]
        yield row


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    elif isinstance(value, list):  # the transcript: one readable line per message
        value = "\n".join(f"[{m['created_at']}] {m['role']}: {m['text']}" for m in value)
    return str(value)


def csv_lines(rows: Iterable[dict[str, Any]], *, transcript: bool = False) -> Iterator[str]:
    """Quoted, formula-safe CSV (leadchat.csvsafe: visitors wrote these cells)."""
    columns = [*COLUMNS, TRANSCRIPT_COLUMN] if transcript else COLUMNS
    table = ([_csv_cell(row.get(column)) for column in columns] for row in rows)
    return csvsafe.csv_lines(itertools.chain([columns], table))


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def export_lines(
    qs: QuerySet[ChatSession], *, file_format: str, tz: ZoneInfo, transcript: bool
) -> Iterator[str]:
    rows = export_rows(qs, tz=tz, transcript=transcript)
    if file_format == CSV:
        return csv_lines(rows, transcript=transcript)
    if file_format == JSONL:
        return jsonl_lines(rows)
    raise ValueError(f"Unknown export format {file_format!r}; use csv or jsonl.")


def export_filename(file_format: str) -> str:
    return f"leadchat-sessions-{timezone.now():%Y%m%d-%H%M%S}.{file_format}"


def export_response(
    qs: QuerySet[ChatSession], *, file_format: str, tz: ZoneInfo, transcript: bool
) -> StreamingHttpResponse:
    lines = export_lines(qs, file_format=file_format, tz=tz, transcript=transcript)
    response = StreamingHttpResponse(
        (line.encode() for line in lines), content_type=CONTENT_TYPES[file_format]
    )
    response["Content-Disposition"] = f'attachment; filename="{export_filename(file_format)}"'
    # Proxies (nginx) would otherwise buffer the whole export before sending a byte.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


class CSVRenderer(BaseRenderer):
    """Lets clients ask for text/csv (content negotiation); the export view streams itself."""

    media_type = "text/csv"
    format = CSV
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        return json.dumps(data).encode()


class JSONLinesRenderer(CSVRenderer):
    media_type = "application/jsonl"
    format = JSONL


# --- Leads (one row per person, sessions_app.leads_selectors) ------------------------------------

LEAD_COLUMNS = [
    "id",
    "email",
    "name",
    "phone",
    "first_seen",
    "last_seen",
    "last_captured_at",
    "conversations",
    "sites",
    "channels",
    "latest_session",
    "latest_completion_status",
    "latest_qa_status",
    "latest_delivery_state",
]


def lead_export_rows(leads: Iterable[Lead], *, tz: ZoneInfo) -> Iterator[dict[str, Any]]:
    for lead in leads:
        yield {
            "id": lead.key,
            "email": lead.email,
            "name": lead.name,
            "phone": lead.phone,
            "first_seen": _iso(lead.first_seen, tz),
            "last_seen": _iso(lead.last_seen, tz),
            "last_captured_at": _iso(lead.last_captured_at, tz),
            "conversations": lead.conversations,
            "sites": [site.name for site in lead.sites],
            "channels": lead.channels,
            "latest_session": str(lead.latest.public_id),
            "latest_completion_status": lead.latest.completion_status,
            "latest_qa_status": lead.latest.qa_status,
            "latest_delivery_state": lead.latest.delivery_state,
        }


def _lead_csv_cell(value: Any) -> str:
    if isinstance(value, list):  # sites, channels: one cell, comma separated
        return ", ".join(str(v) for v in value)
    return _csv_cell(value)


def lead_export_response(
    leads: Iterable[Lead], *, file_format: str, tz: ZoneInfo
) -> StreamingHttpResponse:
    """The people as a streamed file: the same CSV (formula-safe) and JSON Lines as sessions."""
    rows = lead_export_rows(leads, tz=tz)
    if file_format == CSV:
        table = ([_lead_csv_cell(row[c]) for c in LEAD_COLUMNS] for row in rows)
        lines = csvsafe.csv_lines(itertools.chain([LEAD_COLUMNS], table))
    elif file_format == JSONL:
        lines = jsonl_lines(rows)
    else:
        raise ValueError(f"Unknown export format {file_format!r}; use csv or jsonl.")
    response = StreamingHttpResponse(
        (line.encode() for line in lines), content_type=CONTENT_TYPES[file_format]
    )
    filename = f"leadchat-leads-{timezone.now():%Y%m%d-%H%M%S}.{file_format}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response
