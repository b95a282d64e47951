"""n8n as the agent: each visitor message goes to a Chat Trigger or Webhook node.

Request: `{action: "sendMessage", sessionId, chatInput, metadata}` (what n8n's own chat widget
sends, so a stock "AI Agent" workflow with a Chat Trigger works unchanged). `metadata` carries the
page, the UTM fields, the lead so far and the earlier turns (`history`), for workflows that do not
keep their own memory. Reply: `{output}`, or a list of items when the node answers with all items,
or, in the Chat Trigger's "Streaming" response mode, NDJSON chunks
(`{"type": "begin" | "item" | "end" | "error", "content", "metadata": {nodeId, runIndex, ...}}`,
one a line, as n8n's chat widget reads them). A workflow may also return
`lead: {name, email, phone}` when it extracted them (not in streaming mode, which carries text
only); we validate before storing. `handoff: true` asks for a person (the session is marked
"needs a human"; `output` may then be left out); in streaming mode a chunk with
`"handoff": true` (or in its `metadata`) does the same, as does a streamed answer that is the
JSON document `{"output": ..., "handoff": true}`.

Site settings (`agent_config`):
- `webhook_url`: the Chat Trigger's Chat URL (or a Webhook node's production URL);
- `basic_auth_user`: the user of the Chat Trigger's Basic Auth, whose password is the site's
  agent secret;
- `auth_header`: a header carrying the agent secret, for a Webhook node's Header Auth or a proxy
  in front of n8n. The Chat Trigger never checks it (its auth is none, Basic Auth or n8n login).
"""

from __future__ import annotations

import base64
import json
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
from widget.backends.http import post_for_body, response_details

WHAT = "n8n webhook"
CHUNK_TYPES = frozenset({"begin", "item", "end", "error"})


class N8nBackend:
    name = "n8n"
    history_messages = None  # the whole WIDGET_AGENT_HISTORY_MESSAGES window

    def reply(self, conversation: Conversation) -> AgentReply:
        config = conversation.config
        url = str(config.get("webhook_url") or "")
        if not is_http_url(url):
            raise BackendError("n8n backend has no webhook_url in its settings.", permanent=True)
        headers = auth_headers(config, conversation.require_secret())
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
                # The turns before chatInput, oldest first. n8n's AI Agent does not read them:
                # its memory node keeps its own history keyed by sessionId.
                "history": [
                    {"role": turn.role, "text": turn.text} for turn in conversation.history[:-1]
                ],
            },
        }
        if conversation.sandbox:
            payload["metadata"]["sandbox"] = True  # type: ignore[index]
        started = time.monotonic()
        try:
            body, status = post_for_body(
                url, payload, deadline=conversation.deadline, headers=headers, what=WHAT
            )
        except BackendError as exc:
            raise _explained(exc, basic="basic_auth_user" in config) from None
        data = _answer(body, status)
        output = data.get("output")
        handoff = data.get("handoff") is True
        if handoff and not (isinstance(output, str) and output.strip()):
            output = ""  # a bare {"handoff": true}: widget.services tells the visitor
        elif not isinstance(output, str) or not output.strip():
            raise BackendError(
                f"{WHAT} answered without a text `output` field.",
                permanent=True,
                details={
                    "latency_ms": int((time.monotonic() - started) * 1000),
                    **response_details(body),
                },
            )
        # A workflow may answer with a whole document; the visitor gets what the widget can show.
        text, truncated = capped_reply(output.strip())
        return AgentReply(
            text=text,
            extra={"truncated": True} if truncated else {},
            lead=_lead_from(data),
            expects="email" if data.get("expects") == "email" else "text",
            quick_replies=_strings(data.get("quick_replies")),
            model=str(config.get("model") or "n8n"),
            handoff=handoff,
        )


def auth_headers(config: dict[str, Any], secret: str) -> dict[str, str]:
    """The request's credentials: Basic Auth when `basic_auth_user` is set, else the secret in
    `auth_header` (default `Authorization`), else none."""
    user = config.get("basic_auth_user")
    if user is not None:
        if not secret:
            raise BackendError(
                "n8n backend has basic_auth_user but no password: put the Chat Trigger's "
                "Basic Auth password in the site's agent secret.",
                permanent=True,
            )
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    if not secret:
        return {}
    return {str(config.get("auth_header") or "Authorization"): secret}


def _explained(exc: BackendError, *, basic: bool) -> BackendError:
    """The HTTP errors a Chat Trigger gives for a set-up mistake, with the fix in the message."""
    if exc.status_code == 404:
        message = (
            f"{WHAT} answered HTTP 404: n8n's Chat Trigger answers only when its "
            '"Make Chat Publicly Available" option is on and the workflow is published; check '
            "both, and that webhook_url is the Chat URL the node shows (.../webhook/<id>/chat)."
        )
    elif exc.status_code in (401, 403):
        message = f"{WHAT} answered HTTP {exc.status_code}: n8n refused the credentials. " + (
            "Check basic_auth_user and the agent secret (its password) against the Chat "
            "Trigger's Basic Auth credential."
            if basic
            else "For a Chat Trigger with Basic Auth, set basic_auth_user in the agent "
            "config and the password as the agent secret (n8n User Auth cannot be used)."
        )
    else:
        return exc
    return BackendError(message, permanent=True, status_code=exc.status_code, details=exc.details)


def _answer(body: bytes, status: int) -> dict[str, Any]:
    """The answer as one object with `output`: a JSON reply, an item list, or a stream."""
    if not body.strip():
        raise BackendError(
            f"{WHAT} answered with an empty body: in the Chat Trigger's Streaming mode only "
            'an AI Agent with streaming on sends text; otherwise use "When Last Node '
            'Finishes" and end the workflow with {output}.',
            permanent=True,
            status_code=status,
        )
    try:
        data = json.loads(body)
    except ValueError:
        chunks = _chunks(body)
        if chunks is None:
            raise BackendError(
                f"{WHAT} answered with malformed JSON (neither one JSON document nor "
                "n8n's streaming chunks, one JSON object a line).",
                permanent=True,
                status_code=status,
                details=response_details(body),
            ) from None
        return _streamed(chunks, body)
    if isinstance(data, dict) and data.get("type") in CHUNK_TYPES and "output" not in data:
        return _streamed([data], body)  # a stream of one chunk is one JSON document
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("json"), dict):
        data = data["json"]  # an item as n8n lists it
    return data if isinstance(data, dict) else {}


def _chunks(body: bytes) -> list[dict[str, Any]] | None:
    """NDJSON chunks, or None when the body is not that."""
    chunks = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            chunk = json.loads(line)
        except ValueError:
            return None
        if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
            return None
        chunks.append(chunk)
    return chunks or None


def _streamed(chunks: list[dict[str, Any]], body: bytes) -> dict[str, Any]:
    """The streamed text: each node run's `item` contents joined, runs separated by a blank
    line (n8n's chat widget shows each run as its own message)."""
    runs: dict[tuple[str, str], list[str]] = {}
    for chunk in chunks:
        meta = chunk.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        key = (str(meta.get("nodeId", "")), str(meta.get("runIndex", "")))
        if chunk["type"] == "error":
            raise BackendError(
                f"n8n workflow failed while streaming: {str(chunk.get('content') or '')[:300]}",
                permanent=False,
                details=response_details(body),
            )
        if chunk["type"] == "item" and isinstance(chunk.get("content"), str):
            runs.setdefault(key, []).append(chunk["content"])
    text = "\n\n".join(t for t in ("".join(parts).strip() for parts in runs.values()) if t)
    # A stream carries text only, so a workflow asks for a person one of two ways: a chunk
    # flagged `"handoff": true` (itself or in its metadata), or an agent whose whole streamed
    # answer is the JSON document `{"output": ..., "handoff": true}`.
    handoff = any(
        chunk.get("handoff") is True
        or (isinstance(chunk.get("metadata"), dict) and chunk["metadata"].get("handoff") is True)
        for chunk in chunks
    )
    if text.startswith("{") and text.endswith("}"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict) and document.get("handoff") is True:
            output = document.get("output")
            return {"output": output if isinstance(output, str) else "", "handoff": True}
    return {"output": text, "handoff": handoff}


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
