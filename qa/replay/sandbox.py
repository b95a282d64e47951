"""The sandbox a replay runs in: the site's current agent, asked turn by turn, writing nothing.

What a visitor's message does in production (`widget.services.agent_answer` then
`agent_answer_store`) minus every effect: no `message_add` (the real transcript is untouched),
no `lead_capture` (so no lead webhook, no completion, no email), no automation error, no AI
budget counted on the session or the site's day (`widget.budget` writes both), and nothing
queued in the outbox. The backend is called directly, under the replay's own budgets: a time
budget for the whole replay (each call also within WIDGET_AGENT_TIMEOUT) and a token budget.

Lead fields the agent hands over are validated with the rules `lead_capture` uses (pure
functions) and kept on the replay's message, so QA sees what would have been captured.
The backend is told it is a sandbox (`Conversation.sandbox`; n8n gets `metadata.sandbox`) and
gets a session id of its own, so n8n's memory of the real conversation is neither read nor
extended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from sessions_app.errors import InvalidLead
from sessions_app.leads import normalize_email, normalize_name
from sessions_app.models import ChatMessage, ChatSession, MessageRole
from widget import backends
from widget.agent_secrets import AgentSecretError
from widget.backends import AgentReply, BackendError, Conversation, LeadFields, Turn
from widget.backends.scripted import ScriptedBackend
from widget.backends.version import AgentVersion, agent_version
from widget.i18n import site_greeting, site_texts
from widget.models import BackendName, Site
from widget.services import site_secret

logger = logging.getLogger(__name__)


@dataclass
class DraftMessage:
    """A replay message before it is stored (the worker stores them with the outcome)."""

    role: str
    text: str
    original: ChatMessage
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SandboxOutcome:
    messages: list[DraftMessage]
    tokens: int
    version: AgentVersion
    failure: str = ""  # empty when every turn was answered


def _tokens(reply_tokens: object) -> int:
    total = reply_tokens.get("total") if isinstance(reply_tokens, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else 0


def _lead_offered(offered: LeadFields | None, known: LeadFields) -> tuple[LeadFields, dict]:
    """The sandbox's lead after the agent's offer, and what the replay message notes of it."""
    if not offered:
        return known, {}
    valid: dict[str, str] = {}
    invalid: dict[str, str] = {}
    for name, check in (("name", normalize_name), ("email", normalize_email)):
        value = getattr(offered, name)
        if value:
            try:
                valid[name] = check(value)
            except InvalidLead as exc:
                invalid[name] = str(exc)
    if offered.phone:
        valid["phone"] = offered.phone.strip()[:50]
    merged = LeadFields(
        name=valid.get("name") or known.name,
        email=valid.get("email") or known.email,
        phone=valid.get("phone") or known.phone,
    )
    note: dict[str, Any] = {"lead_offered": valid}
    if invalid:
        note["lead_invalid"] = invalid
    return merged, note


def _greeting(site: Site) -> list[Turn]:
    """The greeting a visitor would see now (the scripted flow keeps its state in it)."""
    metadata: dict[str, Any] = {"kind": "greeting", "backend": site.agent_backend}
    with site_texts(site):  # an empty greeting is the default one, in the site's language
        if site.agent_backend == BackendName.SCRIPTED:
            metadata = ScriptedBackend.greeting_metadata(site.agent_config or {})
        return [Turn(role=MessageRole.AI, text=site_greeting(site), metadata=metadata)]


def sandbox_run(
    *,
    sandbox_id: str,
    session: ChatSession,
    site: Site,
    visitor_turns: Sequence[ChatMessage],
    time_budget: float,
    token_budget: int,
    clock: Callable[[], float] = time.monotonic,
) -> SandboxOutcome:
    """Ask `site`'s current agent each of `visitor_turns` in order; never raises for a backend."""
    config = dict(site.agent_config or {})
    version = agent_version(backend=site.agent_backend, config=config)
    started = clock()
    ends = started + time_budget
    per_call = float(settings.WIDGET_AGENT_TIMEOUT)
    try:
        secret, secret_error = site_secret(site), ""
    except AgentSecretError as exc:
        secret, secret_error = "", str(exc)
    history: list[Turn] = _greeting(site)
    lead = LeadFields()
    drafts: list[DraftMessage] = []
    tokens = 0
    try:
        backend = backends.get_backend(site.agent_backend)
    except BackendError as exc:
        return SandboxOutcome([], 0, version, failure=f"The site's agent cannot run: {exc}")
    window = backends.history_messages(site.agent_backend)

    for number, turn in enumerate(visitor_turns, start=1):
        if clock() >= ends:
            return SandboxOutcome(
                drafts,
                tokens,
                version,
                failure=(
                    f"Time budget exceeded: {time_budget:g} s used up before visitor turn "
                    f"{number} of {len(visitor_turns)}."
                ),
            )
        drafts.append(DraftMessage(role=MessageRole.VISITOR, text=turn.text, original=turn))
        history.append(Turn(role=MessageRole.VISITOR, text=turn.text))
        conversation = Conversation(
            session_id=sandbox_id,
            site_name=site.name,
            config=config,
            secret=secret,
            secret_error=secret_error,
            history=history[-window:],
            lead=lead,
            page_url=session.page_url,
            referrer=session.referrer,
            utm=session.utm,
            deadline=time.monotonic() + min(per_call, max(ends - clock(), 0.0)),
            sandbox=True,
        )
        call_started = time.monotonic()
        try:
            with site_texts(site):  # the scripted lines in the site's language, as in production
                reply: AgentReply = backend.reply(conversation)
        except BackendError as exc:
            used = _tokens(exc.details.get("tokens"))
            if clock() >= ends:
                # The call was cut at the replay's deadline, not the agent's own timeout.
                failure = (
                    f"Time budget exceeded: {time_budget:g} s used up during visitor turn "
                    f"{number} of {len(visitor_turns)} ({exc})"
                )
            else:
                failure = (
                    f"The {site.agent_backend} agent failed at visitor turn {number} "
                    f"({'permanent' if exc.permanent else 'temporary'}): {exc}"
                )
            return SandboxOutcome(drafts, tokens + used, version, failure=failure)
        except Exception as exc:
            logger.exception("Agent backend %s crashed in a replay", site.agent_backend)
            return SandboxOutcome(
                drafts,
                tokens,
                version,
                failure=f"The {site.agent_backend} agent crashed at visitor turn {number}: "
                f"{type(exc).__name__}: {exc}",
            )
        tokens += _tokens(reply.tokens)
        lead, lead_note = _lead_offered(reply.lead, lead)
        metadata: dict[str, Any] = {
            "backend": site.agent_backend,
            "model": reply.model,
            "latency_ms": int((time.monotonic() - call_started) * 1000),
            "tokens": reply.tokens,
            "expects": reply.expects,
            "quick_replies": reply.quick_replies,
            **reply.extra,
            **lead_note,
        }
        drafts.append(
            DraftMessage(role=MessageRole.AI, text=reply.text, original=turn, metadata=metadata)
        )
        history.append(Turn(role=MessageRole.AI, text=reply.text, metadata=metadata))
        if tokens > token_budget:
            return SandboxOutcome(
                drafts,
                tokens,
                version,
                failure=(
                    f"Token budget exceeded: {tokens:,} of {token_budget:,} tokens used after "
                    f"visitor turn {number} of {len(visitor_turns)}."
                ),
            )
    return SandboxOutcome(drafts, tokens, version)
