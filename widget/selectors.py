"""Reads the widget needs in more than one place."""

from __future__ import annotations

import uuid

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
