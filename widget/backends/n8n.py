"""n8n as the agent: each visitor message goes to a Chat Trigger or Webhook node.

Request: `{action: "sendMessage", sessionId, chatInput, metadata}` (what n8n's own chat widget
sends, so a stock "AI Agent" workflow with a Chat Trigger works unchanged). Reply: `{output}`, or
a list of items when the node answers with all items. A workflow may also return
`lead: {name, email, phone}` when it extracted them; we validate before storing.

Site settings: `agent_config = {"webhook_url": "...", "auth_header": "X-N8N-Auth"}`, and the
header's value in the site's agent secret (optional).
"""

from __future__ import annotations

import time
from typing import Any

from leadchat.http_urls import is_http_url
from widget.backends.base import (
    AgentReply,
    BackendError,
    Conversation,
    LeadFields,
    capped_reply,
)
from widget.backends.http import post_json


class N8nBackend:
    name = "n8n"
    history_messages = None  # the whole WIDGET_AGENT_HISTORY_MESSAGES window

    def reply(self, conversation: Conversation) -> AgentReply:
        url = str(conversation.config.get("webhook_url") or "")
        if not is_http_url(url):
            raise BackendError("n8n backend has no webhook_url in its settings.", permanent=True)
        headers = {}
        secret = conversation.require_secret()
        if secret:
            headers[str(conversation.config.get("auth_header") or "Authorization")] = secret
        payload = {
            "action": "sendMessage",
            "sessionId": conversation.session_id,
            "chatInput": conversation.text,
            "metadata": {
                "site": conversation.site_name,
                "page_url": conversation.page_url,
                "referrer": conversation.referrer,
                "utm": conversation.utm,
                "lead": {"name": conversation.lead.name, "email": conversation.lead.email},
            },
        }
        started = time.monotonic()
        data, _ = post_json(
            url, payload, deadline=conversation.deadline, headers=headers, what="n8n webhook"
        )
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, dict) and isinstance(data.get("json"), dict):
            data = data["json"]  # an item as n8n lists it
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, str) or not output.strip():
            raise BackendError(
                "n8n webhook answered without a text `output` field.",
                permanent=True,
                details={"latency_ms": int((time.monotonic() - started) * 1000)},
            )
        # A workflow may answer with a whole document; the visitor gets what the widget can show.
        text, truncated = capped_reply(output.strip())
        return AgentReply(
            text=text,
            extra={"truncated": True} if truncated else {},
            lead=_lead_from(data),
            expects="email" if data.get("expects") == "email" else "text",
            quick_replies=_strings(data.get("quick_replies")),
            model=str(conversation.config.get("model") or "n8n"),
        )


def _lead_from(data: dict[str, Any]) -> LeadFields | None:
    lead = data.get("lead")
    if not isinstance(lead, dict):
        return None
    fields: dict[str, Any] = {
        k: str(lead[k]) for k in ("name", "email", "phone") if isinstance(lead.get(k), str)
    }
    return LeadFields(**fields) or None


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v)[:60] for v in value if isinstance(v, str)][:4]
