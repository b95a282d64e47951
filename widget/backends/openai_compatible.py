"""Any OpenAI-compatible `/chat/completions` endpoint as the agent (OpenAI, Ollama, vLLM...).

The model sees the site's system prompt and the transcript, and hands lead fields over through
a `save_lead` tool call. We validate them with the same rules as `lead_capture` and send the
result back as the tool's answer, so the model itself asks again when an email is invalid; then
a second request gets the reply the visitor sees. Both requests share one time budget. A
`request_human` call hands the conversation to a person: no second request then, since
widget.services words what the visitor is told.

Site settings: `agent_config = {"base_url": "https://api.openai.com/v1", "model": "...",
"system_prompt": "...", "temperature": 0.3, "max_tokens": 400}`; the API key is the site's agent
secret (optional for local servers such as Ollama).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from leadchat.http_urls import is_http_url
from sessions_app.errors import InvalidLead
from sessions_app.leads import normalize_email, normalize_name
from widget.backends.base import (
    AgentReply,
    BackendError,
    Conversation,
    LeadFields,
    capped_reply,
)
from widget.backends.http import post_json

DEFAULT_SYSTEM_PROMPT = (
    "You are the friendly assistant on the website of {site}. Answer briefly and helpfully. "
    "Find out what the visitor needs, then ask for their name and email address so the team "
    "can follow up. As soon as the visitor gives a name, an email or a phone number, call the "
    "save_lead tool with them. If the tool says a value is invalid, tell the visitor why and "
    "ask again. Never invent contact details. If the visitor asks to talk to a person (a "
    "human, a real person, an agent, someone from the team), call the request_human tool."
)
SAVE_LEAD_TOOL = {
    "type": "function",
    "function": {
        "name": "save_lead",
        "description": "Store the visitor's contact details as soon as they give them.",
        "parameters": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The visitor's name."},
                "email": {"type": "string", "description": "The visitor's email address."},
                "phone": {"type": "string", "description": "The visitor's phone number."},
            },
        },
    },
}
REQUEST_HUMAN_TOOL = {
    "type": "function",
    "function": {
        "name": "request_human",
        "description": "Hand the conversation to a person from the team, when the visitor "
        "asks to talk to a human.",
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "What the visitor wants, briefly."}
            },
        },
    },
}
ROLE_MAP = {"visitor": "user", "ai": "assistant", "agent": "assistant"}


class OpenAICompatibleBackend:
    name = "openai"
    history_messages = None  # the whole WIDGET_AGENT_HISTORY_MESSAGES window

    def reply(self, conversation: Conversation) -> AgentReply:
        config = conversation.config
        base_url = str(config.get("base_url") or "https://api.openai.com/v1").rstrip("/")
        model = str(config.get("model") or "")
        if not is_http_url(base_url) or not model:
            raise BackendError(
                "OpenAI-compatible backend needs base_url and model in its settings.",
                permanent=True,
            )
        url = f"{base_url}/chat/completions"
        secret = conversation.require_secret()
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        messages = self._messages(conversation)
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "tools": [SAVE_LEAD_TOOL, REQUEST_HUMAN_TOOL],
            "tool_choice": "auto",
        }
        for key in ("temperature", "max_tokens"):
            if isinstance(config.get(key), int | float):
                body[key] = config[key]
        tokens = {"prompt": 0, "completion": 0, "total": 0}

        message = self._complete(url, body, headers, conversation, tokens)
        lead = LeadFields()
        calls = _tool_calls(message)
        handoff = any(_tool_name(call) == "request_human" for call in calls)
        if handoff:
            # No second completion: the visitor's answer is widget.services' own ("someone
            # will join", or the team writes back by email outside the site's hours), and the
            # lead fields of any save_lead call in the same turn are kept.
            for call in calls:
                lead = _merge(lead, _run_tool(call)[1])
            text = message.get("content")
            text, truncated = capped_reply(text.strip() if isinstance(text, str) else "")
            return AgentReply(
                text=text,
                lead=lead or None,
                model=model,
                tokens=tokens,
                extra={"truncated": True} if truncated else {},
                handoff=True,
            )
        if calls:
            messages.append(
                {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
            )
            for call in calls:
                result, found = _run_tool(call)
                lead = _merge(lead, found)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(call.get("id", "")),
                        "content": json.dumps(result),
                    }
                )
            try:
                message = self._complete(url, body, headers, conversation, tokens)
            except BackendError as exc:
                exc.partial_lead = lead or None
                exc.details.setdefault("tokens", tokens)  # the first completion's, still spent
                raise
        text = message.get("content")
        if not isinstance(text, str) or not text.strip():
            raise BackendError(
                "The model answered without any text.",
                permanent=False,
                partial_lead=lead or None,
                details={"tokens": tokens},
            )
        text, truncated = capped_reply(text.strip())
        return AgentReply(
            text=text,
            lead=lead or None,
            model=model,
            tokens=tokens,
            extra={"truncated": True} if truncated else {},
        )

    def _messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        prompt = str(conversation.config.get("system_prompt") or DEFAULT_SYSTEM_PROMPT)
        prompt = prompt.replace("{site}", conversation.site_name)
        known = conversation.lead
        if known.name or known.email:
            prompt += (
                f"\n\nAlready saved: name={known.name or 'unknown'}, "
                f"email={known.email or 'unknown'}. Do not ask for these again."
            )
        limit = int(settings.WIDGET_AGENT_HISTORY_MESSAGES)
        turns = [t for t in conversation.history if t.role in ROLE_MAP][-limit:]
        return [{"role": "system", "content": prompt}] + [
            {"role": ROLE_MAP[t.role], "content": t.text} for t in turns
        ]

    def _complete(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        conversation: Conversation,
        tokens: dict[str, int],
    ) -> dict[str, Any]:
        data, _ = post_json(
            url, body, deadline=conversation.deadline, headers=headers, what="Chat completions"
        )
        try:
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise BackendError(
                "Chat completions answer has no choices[0].message.", permanent=True
            ) from None
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            for ours, theirs in (
                ("prompt", "prompt_tokens"),
                ("completion", "completion_tokens"),
                ("total", "total_tokens"),
            ):
                if isinstance(usage.get(theirs), int):
                    tokens[ours] += usage[theirs]
        return message


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """`tool_calls` as the API defines it (absent, null, or a list of objects), or a permanent
    error: a server that answers another shape will answer it again."""
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
        raise BackendError(
            "Chat completions answer has a malformed tool_calls (not a list of objects).",
            permanent=True,
            details={"tool_calls_type": type(calls).__name__},
        )
    return calls


def _tool_name(call: dict[str, Any]) -> str:
    function = call.get("function")
    return str(function.get("name") or "") if isinstance(function, dict) else ""


def _run_tool(call: Any) -> tuple[dict[str, Any], LeadFields]:
    """Validate a save_lead call; return (the tool's answer to the model, the valid fields)."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or function.get("name") != "save_lead":
        return {"ok": False, "error": "Unknown tool."}, LeadFields()
    try:
        args = json.loads(function.get("arguments") or "{}")
        if not isinstance(args, dict):
            raise ValueError
    except ValueError:
        return {"ok": False, "error": "Arguments must be a JSON object."}, LeadFields()
    valid: dict[str, Any] = {}  # LeadFields keyword arguments
    errors: dict[str, str] = {}
    for field_name, check in (("name", normalize_name), ("email", normalize_email)):
        value = args.get(field_name)
        if isinstance(value, str) and value.strip():
            try:
                valid[field_name] = check(value)
            except InvalidLead as exc:
                errors[field_name] = str(exc)
    if isinstance(args.get("phone"), str) and args["phone"].strip():
        valid["phone"] = args["phone"].strip()[:50]
    result: dict[str, Any] = {"ok": not errors, "saved": sorted(valid)}
    if errors:
        result["invalid"] = errors
    return result, LeadFields(**valid)


def _merge(a: LeadFields, b: LeadFields) -> LeadFields:
    return LeadFields(
        name=b.name or a.name, email=b.email or a.email, phone=b.phone or a.phone, data={}
    )
