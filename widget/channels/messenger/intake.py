"""Taking Meta's webhook in: the signature, and the raw events into the inbox.

The request does the least it can (Meta wants a 200 within seconds and retries otherwise): one
signature check, one query for the sites of the batch's pages, one INSERT of every event that
ignores the ones already stored (the unique `mid`), all in one transaction. The worker does
the rest (`processing.py`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from sessions_app.models import AutomationError
from sessions_app.services import automation_error_record
from widget.channels.messenger.models import InboxKind, InboxStatus, MessengerInboxEvent
from widget.models import Site

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
# Kinds the worker handles; every other kind is stored and skipped.
HANDLED_KINDS = frozenset(
    {
        InboxKind.TEXT,
        InboxKind.QUICK_REPLY,
        InboxKind.POSTBACK,
        InboxKind.ATTACHMENT,
        InboxKind.ECHO,
    }
)
MAX_ID_LENGTH = 64
# Rows per INSERT: 500 x 18 parameters stays far below SQLite's 32,766 and PostgreSQL's 65,535.
INSERT_CHUNK = 500


class MalformedWebhook(ValueError):
    """The body is not a Messenger webhook (the message says what is wrong)."""


def signature_valid(*, body: bytes, header: str | None, secret: str) -> bool:
    """X-Hub-Signature-256: `sha256=` + hex HMAC-SHA256 of the raw body, compared in constant
    time. The raw bytes, never re-serialised JSON: Meta signs exactly what it sent."""
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(SIGNATURE_PREFIX) :].strip().lower())


def sign(body: bytes, secret: str) -> str:
    """The header value Meta would send for `body` (tests and the bench sign with it)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class IntakeResult:
    received: int = 0  # events in the body (a replayed mid among them is not stored again)
    unknown_pages: int = 0


def _id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if len(text) <= MAX_ID_LENGTH else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(value: Any) -> datetime | None:
    # Meta's timestamps are milliseconds since the epoch.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def classify(item: dict[str, Any]) -> tuple[InboxKind, str, str]:
    """(kind, mid, psid) of one `messaging` item; mid and psid empty where it has none."""
    sender = (
        _id((item.get("sender") or {}).get("id")) if isinstance(item.get("sender"), dict) else ""
    )
    recipient = (
        _id((item.get("recipient") or {}).get("id"))
        if isinstance(item.get("recipient"), dict)
        else ""
    )
    message = item.get("message")
    if isinstance(message, dict):
        mid = _text(message.get("mid"))
        if message.get("is_echo") is True:
            return InboxKind.ECHO, mid, recipient
        if isinstance(message.get("quick_reply"), dict):
            return InboxKind.QUICK_REPLY, mid, sender
        if isinstance(message.get("text"), str) and message["text"].strip():
            return InboxKind.TEXT, mid, sender
        if isinstance(message.get("attachments"), list) and message["attachments"]:
            return InboxKind.ATTACHMENT, mid, sender
        return InboxKind.UNKNOWN, mid, sender
    postback = item.get("postback")
    if isinstance(postback, dict):
        mid = _text(postback.get("mid"))
        return InboxKind.POSTBACK, mid, sender
    if isinstance(item.get("delivery"), dict):
        return InboxKind.DELIVERY, "", sender
    if isinstance(item.get("read"), dict):
        return InboxKind.READ, "", sender
    return InboxKind.UNKNOWN, "", sender


def _content_key(page_id: str, item: Any) -> str:
    # Receipts and unknown events carry no mid; their content is their identity, so a retried
    # POST stores them once too.
    canonical = json.dumps([page_id, item], sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def inbox_events_store(*, data: Any) -> IntakeResult:
    """Store every event of a verified webhook body in the inbox, in one transaction.

    Raises MalformedWebhook when the body is not `{"object": "page", "entry": [...]}`.
    """
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise MalformedWebhook('Expected {"object": "page", "entry": [...]}.')
    if data.get("object") != "page":
        raise MalformedWebhook(f'object must be "page" (Messenger), not {data.get("object")!r}.')
    now = timezone.now()
    result = IntakeResult()
    entries = [entry for entry in data["entry"] if isinstance(entry, dict)]
    page_ids = {_id(entry.get("id")) for entry in entries} - {""}
    sites = _sites_by_page(page_ids)
    rows: list[MessengerInboxEvent] = []
    unknown: set[str] = set()
    for entry in entries:
        page_id = _id(entry.get("id"))
        site = sites.get(page_id)
        messaging = entry.get("messaging")
        for item in messaging if isinstance(messaging, list) else []:
            result.received += 1
            if isinstance(item, dict):
                kind, mid, psid = classify(item)
                event_at = _timestamp(item.get("timestamp"))
            else:
                kind, mid, psid, event_at = InboxKind.UNKNOWN, "", "", None
            status, error = InboxStatus.PENDING, ""
            if site is None:
                status, error = InboxStatus.SKIPPED, f"No site has Facebook page id {page_id!r}."
                unknown.add(page_id)
            elif not site[1]:
                status, error = InboxStatus.SKIPPED, f"Site {site[2]!r} is switched off."
            elif kind not in HANDLED_KINDS or not psid:
                status = InboxStatus.SKIPPED
            rows.append(
                MessengerInboxEvent(
                    mid=(mid[:255] if mid else _content_key(page_id, item)),
                    page_id=page_id,
                    psid=psid,
                    kind=kind,
                    payload=item,
                    event_at=event_at,
                    received_at=now,
                    next_attempt_at=now,
                    site_id=site[0] if site else None,
                    status=status,
                    last_error=error,
                    processed_at=now if status == InboxStatus.SKIPPED else None,
                )
            )
    if rows:
        _insert_new(rows)
    for page_id in sorted(unknown):
        _unknown_page_report(page_id)
    result.unknown_pages = len(unknown)
    return result


def _sites_by_page(page_ids: set[str]) -> dict[str, tuple[int, bool, str]]:
    """(pk, is_active, name) of the sites with these page ids, read fresh on every webhook (a
    page just connected must not be skipped as unknown, so no cache).

    Written out: as model instances in the sites' default order the lookup was a third of the
    request's CPU, and compiling the ORM's values_list() query still a fifth
    (bench/messenger_intake.py). A webhook names one page nearly always."""
    if not page_ids:
        return {}
    qn = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(page_ids))
    sql = (
        f"SELECT {qn('id')}, {qn('messenger_page_id')}, {qn('is_active')}, {qn('name')} "  # noqa: S608
        f"FROM {qn(Site._meta.db_table)} WHERE {qn('messenger_page_id')} IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, sorted(page_ids))
        return {page_id: (pk, bool(active), name) for pk, page_id, active, name in cursor}


def _insert_new(rows: list[MessengerInboxEvent]) -> None:
    """Every row in one INSERT that leaves a mid already stored (Meta's retry) as it is.

    One statement is one transaction on its own, so outside a transaction it is one round trip
    to the database. bulk_create(ignore_conflicts=True) writes the same rows but wraps them in
    BEGIN ... COMMIT, two more round trips per webhook, which cost a quarter of the intake's
    throughput (bench/messenger_intake.py). The SQL is written once from the model's fields;
    values travel as parameters, adapted by each field as the ORM would.
    """
    fields = _insert_fields()
    chunks = [rows[i : i + INSERT_CHUNK] for i in range(0, len(rows), INSERT_CHUNK)]
    # A body of thousands of tiny events would pass the databases' limit on parameters in one
    # statement: several statements then, in one transaction still.
    with transaction.atomic() if len(chunks) > 1 else contextlib.nullcontext():
        for chunk in chunks:
            params: list[Any] = []
            for row in chunk:
                params += [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
            with connection.cursor() as cursor:
                cursor.execute(_insert_sql(connection.vendor, len(chunk)), params)


@functools.cache
def _insert_fields() -> tuple[Field[Any, Any], ...]:
    return tuple(f for f in MessengerInboxEvent._meta.concrete_fields if not f.primary_key)


@functools.lru_cache(maxsize=16)
def _insert_sql(vendor: str, row_count: int) -> str:
    # Per database vendor (tests run SQLite and PostgreSQL in one process) and row count: a
    # webhook has one event nearly always, so building it again each time was wasted work.
    quote = connection.ops.quote_name
    fields = _insert_fields()
    columns = ", ".join(quote(f.column or f.attname) for f in fields)
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    table = quote(MessengerInboxEvent._meta.db_table)
    # SQLite (3.24+) and PostgreSQL both take ON CONFLICT ... DO NOTHING.
    return (
        f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (constants only)
        f"{', '.join([one_row] * row_count)} ON CONFLICT ({quote('mid')}) DO NOTHING"
    )


def _unknown_page_report(page_id: str) -> None:
    # One automation error per page, however often Meta sends its events: the execution id makes
    # a repeat a lookup of the stored row (automation_error_record's get_or_create).
    _error, created = automation_error_record(
        source=AutomationError.Source.MESSENGER,
        workflow="Messenger webhook",
        node="unknown page",
        message=(
            f"Meta sent Messenger events for Facebook page {page_id or '(none)'}, which no site "
            "has. Set that page id (and its page access token) in the site's Messenger section, "
            "or unsubscribe the page from the Meta app. Its events are stored and skipped."
        ),
        execution_id=f"messenger:unknown-page:{page_id}",
        details={"page_id": page_id},
    )
    if created:
        logger.warning("Messenger events for unknown page %s", page_id)
