"""Taking Meta's webhook in: the signature, and the raw events into the inbox.

The request does the least it can (Meta wants a 200 within seconds and retries otherwise, and
posts by the hundred per second): one signature check and one INSERT of every event that
ignores the ones already stored (the unique `mid`): one statement, so one round trip and one
transaction. Which site a page's events belong to is the worker's first step
(`processing.py`), read when the event is handled: a page connected to a site a minute after
Meta started sending gets those events answered, and the request needs no second query.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, Field, JSONField
from django.utils import timezone

from widget.channels.messenger.models import InboxKind, InboxStatus, MessengerInboxEvent

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


def webhook_shape_problem(data: Any) -> str | None:
    """What makes parsed JSON not a Messenger webhook body, or None."""
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        return 'Expected {"object": "page", "entry": [...]}.'
    if data.get("object") != "page":
        return f'object must be "page" (Messenger), not {data.get("object")!r}.'
    return None


def inbox_events_store(*, data: Any) -> IntakeResult:
    """Store every event of a verified webhook body in the inbox, in one transaction.

    Raises MalformedWebhook when the body is not `{"object": "page", "entry": [...]}`.
    """
    problem = webhook_shape_problem(data)
    if problem is not None:
        raise MalformedWebhook(problem)
    now = timezone.now()
    result = IntakeResult()
    rows: list[dict[str, Any]] = []
    for entry in data["entry"]:
        if not isinstance(entry, dict):
            continue
        page_id = _id(entry.get("id"))
        messaging = entry.get("messaging")
        for item in messaging if isinstance(messaging, list) else []:
            result.received += 1
            if isinstance(item, dict):
                kind, mid, psid = classify(item)
                event_at = _timestamp(item.get("timestamp"))
            else:
                kind, mid, psid, event_at = InboxKind.UNKNOWN, "", "", None
            # Receipts, unknown kinds and events of nobody are kept (nothing Meta sent is lost)
            # and never handled.
            skipped = kind not in HANDLED_KINDS or not psid or not page_id
            rows.append(
                {
                    "mid": mid[:255] if mid else _content_key(page_id, item),
                    "page_id": page_id,
                    "psid": psid,
                    "kind": kind,
                    "payload": item,
                    "event_at": event_at,
                    "received_at": now,
                    "next_attempt_at": now,
                    "status": InboxStatus.SKIPPED if skipped else InboxStatus.PENDING,
                    "processed_at": now if skipped else None,
                }
            )
    if rows:
        _insert_new(rows)
    return result


def _insert_new(rows: list[dict[str, Any]]) -> None:
    """Every row (the values of _SET_BY_INTAKE by attname) in one INSERT that leaves a mid
    already stored (Meta's retry) as it is.

    One statement is one transaction on its own, so outside a transaction it is one round trip
    to the database. bulk_create(ignore_conflicts=True) writes the same rows but wraps them in
    BEGIN ... COMMIT, two more round trips per webhook, which cost a quarter of the intake's
    throughput (bench/messenger_intake.py). The SQL is written once from the model's fields,
    the other fields' defaults in it as literals. The row's values travel as parameters: the
    date-times and the JSON payload adapted by their fields as the ORM would, the rest (text)
    as it is. Building a model instance per event and passing all 17 fields through the
    driver's quoting was most of the request's CPU (py-spy on a loaded gunicorn worker).
    """
    fields = _param_fields()
    adapted = _adapted_fields()
    chunks = [rows[i : i + INSERT_CHUNK] for i in range(0, len(rows), INSERT_CHUNK)]
    # A body of thousands of tiny events would pass the databases' limit on parameters in one
    # statement: several statements then, in one transaction still.
    with transaction.atomic() if len(chunks) > 1 else contextlib.nullcontext():
        for chunk in chunks:
            params: list[Any] = []
            for row in chunk:
                params += [
                    adapted[f.attname](row[f.attname]) if f.attname in adapted else row[f.attname]
                    for f in fields
                ]
            with connection.cursor() as cursor:
                cursor.execute(_insert_sql(connection.vendor, len(chunk)), params)


# The fields inbox_events_store sets for every event; every other field takes its default.
_SET_BY_INTAKE = frozenset(
    {
        "mid",
        "page_id",
        "psid",
        "kind",
        "payload",
        "event_at",
        "received_at",
        "next_attempt_at",
        "status",
        "processed_at",
    }
)


@functools.cache
def _param_fields() -> tuple[Field[Any, Any], ...]:
    return tuple(
        f for f in MessengerInboxEvent._meta.concrete_fields if f.attname in _SET_BY_INTAKE
    )


@functools.cache
def _adapted_fields() -> dict[str, Any]:
    """attname -> adapter, for the fields whose values the database driver cannot take as
    they are: date-times (SQLite stores text) and the JSON payload. Bound to Django's
    `connection` proxy, which is the current thread's connection at each call."""
    adapters: dict[str, Any] = {}
    for field in _param_fields():
        if isinstance(field, DateTimeField | JSONField):
            adapters[field.attname] = functools.partial(
                field.get_db_prep_save, connection=connection
            )
    return adapters


@functools.cache
def _default_literals() -> tuple[tuple[str, str], ...]:
    """(column, SQL literal of the model's default) of every other field: a field added to
    the model later is in every row with its default, as bulk_create would write it; one
    whose default is not NULL, an empty string or an integer must be set by the intake."""
    literals = []
    for field in MessengerInboxEvent._meta.concrete_fields:
        if field.primary_key or field.attname in _SET_BY_INTAKE:
            continue
        value = field.get_default()
        if value is None:
            literal = "NULL"
        elif value == "" and isinstance(value, str):
            literal = "''"
        elif isinstance(value, int) and not isinstance(value, bool):
            literal = str(value)
        else:
            raise TypeError(f"{field.attname}: set it in inbox_events_store ({value!r})")
        literals.append((field.column or field.attname, literal))
    return tuple(literals)


@functools.lru_cache(maxsize=16)
def _insert_sql(vendor: str, row_count: int) -> str:
    # Per database vendor (tests run SQLite and PostgreSQL in one process) and row count: a
    # webhook has one event nearly always, so building it again each time was wasted work.
    quote = connection.ops.quote_name
    defaults = _default_literals()
    columns = ", ".join(
        [quote(f.column or f.attname) for f in _param_fields()]
        + [quote(column) for column, _ in defaults]
    )
    one_row = (
        "(" + ", ".join(["%s"] * len(_param_fields()) + [literal for _, literal in defaults]) + ")"
    )
    table = quote(MessengerInboxEvent._meta.db_table)
    # SQLite (3.24+) and PostgreSQL both take ON CONFLICT ... DO NOTHING.
    return (
        f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (constants only)
        f"{', '.join([one_row] * row_count)} ON CONFLICT ({quote('mid')}) DO NOTHING"
    )
