"""The boxes of the session change view (add one: append a `Panel` to ChatSessionAdmin.panels)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from qa import selectors
from qa.display import url_link
from qa.history import qa_replay_sampling_entries
from sessions_app import selectors as sessions_selectors
from sessions_app.history import HISTORY_LIMIT, session_history
from sessions_app.models import (
    ChatSession,
)


@dataclass(frozen=True)
class Panel:
    """One box of the session change view.

    `context(request, session)` returns what `template` reads as `item.<key>` (the panel
    itself is `item.panel`); `area` places it: "main" (beside the QA panel), "side" (the right
    column) or "below" (full width). Add a panel by appending to `ChatSessionAdmin.panels`
    (e.g. the webhook deliveries of the session); keep its queries bounded (a LIMIT).
    """

    key: str
    title: str
    template: str
    context: Callable[[HttpRequest, ChatSession], dict[str, Any]]
    area: str = "below"


def transcript_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    messages_ = selectors.session_transcript(session)
    rows = []
    for message in messages_:
        meta = message.metadata if isinstance(message.metadata, dict) else {}
        latency = meta.get("latency_ms")
        rows.append(
            {
                "message": message,
                "side": "visitor" if message.role == "visitor" else "agent",
                "backend": meta.get("backend") or "",
                "model": meta.get("model") or "",
                "latency_ms": latency if isinstance(latency, int | float) else None,
                "tokens": meta.get("tokens") if isinstance(meta.get("tokens"), int) else None,
            }
        )
    return {
        "rows": rows,
        "truncated": session.message_count > len(messages_) and len(messages_) >= 1,
        "limit": selectors.TRANSCRIPT_LIMIT,
    }


def lead_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    data = session.lead_data if isinstance(session.lead_data, dict) else {}
    return {"extra": sorted((str(k), v) for k, v in data.items())}


def session_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    return {
        "page_link": url_link(session.page_url),
        "referrer_link": url_link(session.referrer),
        "utm": [
            (name, getattr(session, f"utm_{name}"))
            for name in ("source", "medium", "campaign", "term", "content")
            if getattr(session, f"utm_{name}")
        ],
    }


def history_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    # The console's History adds the replays and the sampling decision (QA's own workings; the
    # dashboard's history, for agents, shows the moves only).
    entries = [*session_history(session), *qa_replay_sampling_entries(session, HISTORY_LIMIT)]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return {"entries": entries[:HISTORY_LIMIT]}


def errors_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    errors = selectors.session_automation_errors(session)
    return {
        "errors": [
            {"error": e, "url": reverse("admin:sessions_app_automationerror_change", args=[e.pk])}
            for e in errors
        ],
        "list_url": reverse("admin:sessions_app_automationerror_changelist")
        + "?"
        + urlencode({"session__id__exact": session.pk}),
        "limit": selectors.ERRORS_LIMIT,
    }


def deliveries_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    can_open = request.user.has_perm("sessions_app.view_delivery")
    return {
        "deliveries": [
            {
                "delivery": d,
                "target": sessions_selectors.delivery_recipients(d),
                "url": reverse("admin:sessions_app_delivery_change", args=[d.pk])
                if can_open
                else "",
            }
            for d in sessions_selectors.session_deliveries(session)
        ],
        "limit": sessions_selectors.DELIVERIES_LIMIT,
        "list_url": reverse("admin:sessions_app_delivery_changelist")
        + "?"
        + urlencode({"session__id__exact": session.pk})
        if can_open
        else "",
    }
