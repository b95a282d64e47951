"""Reads the widget needs in more than one place."""

from __future__ import annotations

import uuid

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
    return (
        ChatSession.objects.not_deleted().select_related("site").filter(public_id=public_id).first()
    )


def transcript_for_visitor(session: ChatSession) -> list[ChatMessage]:
    """What the visitor sees: everything but internal system notes, oldest first."""
    return list(session.messages.exclude(role=MessageRole.SYSTEM).order_by("created_at", "id"))


def recent_turns(session: ChatSession, limit: int) -> list[ChatMessage]:
    """The last `limit` visible messages, oldest first (what a backend is shown)."""
    newest = session.messages.exclude(role=MessageRole.SYSTEM).order_by("-created_at", "-id")
    return list(reversed(newest[:limit]))
