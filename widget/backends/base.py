"""The agent backend interface: what a backend is given, what it answers, how it fails.

A backend is a class with one method, `reply(conversation) -> AgentReply`. It never writes to the
database: `widget.services` stores the reply and the lead fields through `sessions_app.services`,
so every backend shares one write path and one failure path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

# The longest reply a backend may put in front of the visitor: the widget's own message limit
# (widget.serializers.MAX_MESSAGE_CHARS). Longer answers are cut there, marked `truncated`.
MAX_REPLY_CHARS = 4000


def capped_reply(text: str) -> tuple[str, bool]:
    """`text` cut to MAX_REPLY_CHARS (ending in an ellipsis), and whether it was cut."""
    if len(text) <= MAX_REPLY_CHARS:
        return text, False
    return text[: MAX_REPLY_CHARS - 1].rstrip() + "…", True


class BackendError(Exception):
    """A backend could not produce a reply.

    `permanent` says whether trying again could help: a timeout, a refused connection or a 5xx
    is temporary; a 4xx (wrong URL, bad API key) or an answer we cannot read is permanent and
    needs someone to fix the site's settings. Both end in the visitor's fallback reply and an
    AutomationError; the flag tells the person reading the error where to look.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status_code: int | None = None,
        partial_lead: LeadFields | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status_code = status_code
        # Lead fields the backend had already received (e.g. a tool call) before it failed, so
        # that a late failure still keeps what the visitor gave.
        self.partial_lead = partial_lead
        self.details = details or {}


@dataclass(frozen=True)
class Turn:
    role: str  # visitor / ai / agent (system messages are not shown to backends)
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeadFields:
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Why the visitor leaves no lead (the scripted agent's decline rule); stored on the session.
    declined: str | None = None

    def __bool__(self) -> bool:
        return bool(self.name or self.email or self.phone or self.data or self.declined)


@dataclass(frozen=True)
class LeadRules:
    """A site's lead-quality settings, as a backend needs them (widget.models.Site)."""

    refuse_no_mx: bool = False
    refuse_disposable: bool = False
    phone_region: str = ""  # phonenumbers' region for national numbers ("PT"); "" none
    contact_line: str = ""  # offered to a visitor who declines twice
    privacy_line: str = ""  # shown before the email is asked (widget.services adds it)


@dataclass(frozen=True)
class Conversation:
    """Everything a backend may use to answer the visitor's latest message."""

    session_id: str
    site_name: str
    config: dict[str, Any]
    secret: str
    history: list[Turn]  # oldest first; the last turn is the visitor's new message
    lead: LeadFields
    page_url: str = ""
    referrer: str = ""
    # ChatSession.utm: source, medium, campaign, term, content (the lead webhook's names).
    utm: dict[str, str] = field(default_factory=dict)
    deadline: float = 0.0  # time.monotonic() value by which the reply must be back
    # Why the site's secret could not be read (an `env:` name that is not allowed, or unset):
    # a backend that needs the secret raises it as a permanent BackendError.
    secret_error: str = ""
    # A QA replay (qa.replay), not a visitor: a backend tells its peer so (n8n's metadata
    # `sandbox`), so a workflow can skip its own side effects (a CRM write, a Slack message).
    sandbox: bool = False
    lead_rules: LeadRules = field(default_factory=LeadRules)

    def require_secret(self) -> str:
        if self.secret_error:
            raise BackendError(self.secret_error, permanent=True)
        return self.secret

    @property
    def text(self) -> str:
        return self.history[-1].text if self.history else ""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class AgentReply:
    text: str
    # Lead fields the backend found; the service validates and stores them (lead_capture).
    lead: LeadFields | None = None
    # What the widget should offer next: quick-reply buttons, and the kind of input.
    quick_replies: list[str] = field(default_factory=list)
    expects: str = "text"  # "text" or "email"
    model: str = ""
    tokens: dict[str, int] | None = None
    # Backend-specific facts worth keeping on the message (e.g. the scripted step).
    extra: dict[str, Any] = field(default_factory=dict)
    # The visitor asked for a person (the scripted phrase table, n8n's `handoff`, the OpenAI
    # `request_human` tool). widget.services marks the session "needs a human" and tells the
    # visitor who will answer; `text` may then be empty (that message is all they need).
    handoff: bool = False


class AgentBackend(Protocol):
    # Read-only members: a backend sets them on its class, a wrapper (widget.budget's
    # MeteredBackend) copies them onto the instance.
    @property
    def name(self) -> str: ...

    # How many recent messages the backend needs to see; None: WIDGET_AGENT_HISTORY_MESSAGES.
    @property
    def history_messages(self) -> int | None: ...

    def reply(self, conversation: Conversation) -> AgentReply: ...
