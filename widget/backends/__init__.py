"""Agent backends, chosen per site by `Site.agent_backend`.

A small registry maps the name to a class with one `reply(conversation)` method (STYLE.md).
Tests swap a backend in with `override()` (see `widget.backends.fake`); no test reaches the
network except loopback servers it starts itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from widget.backends.base import (
    AgentBackend,
    AgentReply,
    BackendError,
    Conversation,
    LeadFields,
    LeadRules,
    Turn,
)

__all__ = [
    "AgentBackend",
    "AgentReply",
    "BackendError",
    "Conversation",
    "LeadFields",
    "LeadRules",
    "Turn",
    "get_backend",
    "history_messages",
    "override",
    "register",
]

_registry: dict[str, AgentBackend] = {}


def register(backend: AgentBackend) -> AgentBackend:
    _registry[backend.name] = backend
    return backend


def get_backend(name: str) -> AgentBackend:
    _load_builtins()
    try:
        return _registry[name]
    except KeyError:
        raise BackendError(f"Unknown agent backend {name!r}.", permanent=True) from None


def history_messages(name: str) -> int:
    """How many recent messages to show backend `name`: its own window, else the setting."""
    _load_builtins()
    window = getattr(_registry.get(name), "history_messages", None)
    return int(window or settings.WIDGET_AGENT_HISTORY_MESSAGES)


@contextmanager
def override(name: str, backend: AgentBackend) -> Iterator[AgentBackend]:
    """Serve `backend` for sites configured with `name` (tests only)."""
    _load_builtins()
    previous = _registry.get(name)
    _registry[name] = backend
    try:
        yield backend
    finally:
        if previous is None:
            _registry.pop(name, None)
        else:
            _registry[name] = previous


_loaded = False


def _load_builtins() -> None:
    # Imported lazily: the HTTP backends pull in requests, which the embed and page views never
    # need, and the modules import this package for the shared types.
    global _loaded
    if _loaded:
        return
    from widget.backends.n8n import N8nBackend
    from widget.backends.openai_compatible import OpenAICompatibleBackend
    from widget.backends.scripted import ScriptedBackend

    for backend in (ScriptedBackend(), N8nBackend(), OpenAICompatibleBackend()):
        _registry.setdefault(backend.name, backend)
    _loaded = True
