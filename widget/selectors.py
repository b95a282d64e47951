"""Reads the widget needs in more than one place."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from sessions_app.models import ChatMessage, ChatSession, MessageRole
from widget.models import Site


def site_for_key(key: str) -> Site | None:
    """The site with this public key (active or not; callers decide what inactive means)."""
    if not key or len(key) > 64:
        return None
    return Site.objects.filter(public_key=key).first()


def session_for_widget(session_id: str) -> ChatSession | None:
    """A session by its public id, with its site; None for unknown, malformed or deleted ids."""
    try:
        public_id = uuid.UUID(str(session_id))
    except ValueError:
        return None
    try:
        return ChatSession.objects.not_deleted().select_related("site").get(public_id=public_id)
    except ChatSession.DoesNotExist:  # public_id is unique: get() needs no ORDER BY, first() does
        return None


def shown_to_visitor(message: ChatMessage) -> bool:
    """System notes are internal, except those written for the visitor ("Ana joined the chat")."""
    return message.role != MessageRole.SYSTEM or (message.metadata or {}).get("visible") is True


def transcript_for_visitor(session: ChatSession) -> list[ChatMessage]:
    """What the visitor sees: everything but internal system notes, oldest first."""
    messages = session.messages.select_related("sent_by").order_by("created_at", "id")
    return [m for m in messages if shown_to_visitor(m)]


# A widget polls this every few seconds while it is open, mostly to hear "nothing new": one
# query on the transcript index (session, then the id range), and an empty answer reads no row.
POLL_LIMIT = 50


def messages_for_visitor_since(session: ChatSession, after: int) -> tuple[list[ChatMessage], int]:
    """The visitor-visible messages with an id above `after`, oldest first, and the cursor to
    ask from next (the last id read, shown or not). At most POLL_LIMIT rows a call."""
    rows = list(
        ChatMessage.objects.filter(session_id=session.pk, id__gt=after)
        .select_related("sent_by")
        .order_by("id")[:POLL_LIMIT]
    )
    cursor = rows[-1].pk if rows else after
    return [m for m in rows if shown_to_visitor(m)], cursor


def recent_turns(session: ChatSession, limit: int) -> list[ChatMessage]:
    """The last `limit` visible messages, oldest first (what a backend is shown): read on every
    widget message, so only the columns a backend sees."""
    newest = (
        session.messages.exclude(role=MessageRole.SYSTEM)
        .order_by("-created_at", "-id")
        .only("session", "role", "text", "metadata")
    )
    return list(reversed(newest[:limit]))


def sites_for_embed(*, limit: int) -> list[Site]:
    """Active sites with what an embed line needs (name and key), for the dashboard's setup help."""
    return list(Site.objects.filter(is_active=True).only("name", "public_key")[:limit])


def sites_for_filter() -> QuerySet[Site]:
    """Every site by name (active or not: old sessions keep theirs), for a site filter."""
    return Site.objects.only("name").order_by("name")


# --- The poll's own reads ----------------------------------------------------------------------
# An open widget polls every LIVE_POLL_MS, and nearly always hears "nothing new": at 200 open
# chats that is 100 requests a second doing nothing. Through the ORM, compiling the session's
# 50-column SELECT (with its site) and the messages' one took about 5 ms of CPU a poll, more than
# running them (bench/idle_widgets.py); written out they cost a fraction of that. Every
# fragment is a constant; values travel as parameters.


def _poll_fields(model: Any, attnames: set[str]) -> list[Any]:
    # In the model's field order: Model.from_db takes the values in that order.
    return [f for f in model._meta.concrete_fields if f.attname in attnames]


def _loaded(model: Any, fields: list[Any], row: tuple[Any, ...]) -> Any:
    values = []
    for field, value in zip(fields, row, strict=True):
        from_db = getattr(field, "from_db_value", None)
        values.append(from_db(value, None, connection) if from_db and value is not None else value)
    return model.from_db(connection.alias, [f.attname for f in fields], values)


_SESSION_POLL_FIELDS = _poll_fields(
    ChatSession, {"id", "public_id", "visitor_token_hash", "held_by_id", "site_id"}
)
_SITE_POLL_FIELDS = _poll_fields(Site, {"id", "is_active", "allowed_origins"})


_PUBLIC_ID_FIELD = ChatSession._meta.get_field("public_id")


@functools.lru_cache(maxsize=4)
def _session_for_poll_sql(vendor: str) -> str:
    # Per vendor (tests run SQLite and PostgreSQL in one process); written once, not per poll.
    qn = connection.ops.quote_name
    sessions, sites = qn(ChatSession._meta.db_table), qn(Site._meta.db_table)
    messages = qn(ChatMessage._meta.db_table)
    columns = [f"s.{qn(f.column)}" for f in _SESSION_POLL_FIELDS]
    columns += [f"w.{qn(f.column)}" for f in _SITE_POLL_FIELDS]
    columns.append(
        f"EXISTS (SELECT 1 FROM {messages} m WHERE m.session_id = s.id AND m.id > %s)"  # noqa: S608
    )
    return (
        f"SELECT {', '.join(columns)} FROM {sessions} s "  # noqa: S608
        f"JOIN {sites} w ON w.id = s.site_id "
        f"WHERE s.{qn('public_id')} = %s AND s.deleted_at IS NULL"
    )


def session_for_poll(session_id: str, *, after: int = 0) -> ChatSession | None:
    """What the poll needs of a session and its site, in one written-out query: the session
    (not deleted) with only these columns loaded, `site` with its active flag and origins, and
    `has_messages_after`: whether any message has an id above the cursor `after` (nearly always
    False: then the poll reads nothing else). None for an unknown, malformed or deleted id, or a
    session without a site."""
    try:
        public_id = uuid.UUID(str(session_id))
    except ValueError:
        return None
    key = _PUBLIC_ID_FIELD.get_db_prep_value(public_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_session_for_poll_sql(connection.vendor), [after, key])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_SESSION_POLL_FIELDS)
    session: ChatSession = _loaded(ChatSession, _SESSION_POLL_FIELDS, row[:n])
    session.site = _loaded(Site, _SITE_POLL_FIELDS, row[n:-1])
    session.has_messages_after = bool(row[-1])  # type: ignore[attr-defined]
    return session
