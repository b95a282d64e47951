""" "Visitor is typing" for the agent holding a session (issue 14).

The open widget of a held session sends at most one ping per TYPING_PING_SECONDS while the
visitor types (`POST /api/widget/sessions/{id}/typing/`); each ping keeps a short-lived cache
key, and the staff API's live poll (`GET /api/sessions/{id}/messages/?after=`) reports it as
`visitor_typing`. Nothing is stored in the database: it is a hint that expires on its own.
With a per-process cache (the default locmem) the hint is only seen by polls the same process
answers; a shared cache (CACHE_URL=redis://...) shows it to all. Without the cache it is never
shown: the transcript itself does not depend on it.
"""

from __future__ import annotations

from django.core.cache import cache

from leadchat.cache_guard import cache_call

# The widget pings at most this often while the visitor types (static/widget/widget.js)...
TYPING_PING_SECONDS = 3
# ...and the hint outlives a ping by one poll or so, so it does not flicker between pings.
TYPING_SECONDS = TYPING_PING_SECONDS + 2


def _key(session_pk: int) -> str:
    return f"live:visitor-typing:{session_pk}"


def visitor_typing_mark(*, session_pk: int) -> None:
    cache_call("typing-mark", lambda: cache.set(_key(session_pk), 1, TYPING_SECONDS), None)


def visitor_typing_clear(*, session_pk: int) -> None:
    # The visitor's message arrived: they stopped typing.
    cache_call("typing-clear", lambda: cache.delete(_key(session_pk)), None)


def visitor_is_typing(*, session_pk: int) -> bool:
    return bool(cache_call("typing-read", lambda: cache.get(_key(session_pk)), None))
