"""The widget's composed operations, built on `sessions_app.services` (the only write path).

`widget_message_post` is the heart of the widget: it stores the visitor's message in its own
committed transaction BEFORE any backend is called, so an agent that hangs, fails or crashes the
process can never lose what the visitor wrote. The backend call happens outside any transaction
(it may take many seconds; holding a row lock or a connection in a transaction that long would
stall every other write to the session).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import get_language, gettext, gettext_noop

from sessions_app.email_quality import email_check, email_refusal
from sessions_app.errors import InvalidLead
from sessions_app.leads import normalize_email
from sessions_app.live import visitor_typing_clear
from sessions_app.models import AutomationError, ChatMessage, ChatSession, MessageRole
from sessions_app.services import (
    UTM_FIELDS,
    AgentVersionFields,
    automation_error_record,
    human_request,
    lead_capture,
    message_add,
    session_start,
)
from widget import backends, selectors
from widget.agent_secrets import AgentSecretError, agent_secret_resolve
from widget.backends import AgentReply, BackendError, Conversation, LeadFields, LeadRules, Turn
from widget.backends.human_request import asks_for_human
from widget.backends.scripted import ScriptedBackend, extract_lead
from widget.backends.version import AgentVersion, agent_version
from widget.budget import metered_backend
from widget.bulkhead import agent_slot
from widget.handoff import handoff_reply
from widget.i18n import site_greeting, site_texts
from widget.models import BackendName, Site

logger = logging.getLogger(__name__)

# English here (tests and the bench compare with it); said through gettext in the site's language.
FALLBACK_REPLY = gettext_noop(
    "Sorry, I can't answer right now. Your message is saved and our team will get back to you."
)
FALLBACK_ASK_EMAIL = gettext_noop("If you leave your name and email, we'll reply there.")


@dataclass
class WidgetTurn:
    """What one visitor message produced: the stored messages, in order, and the session."""

    messages: list[ChatMessage]
    session: ChatSession


def site_secret(site: Site) -> str:
    """The site's agent secret; `env:NAME` reads it from the environment instead of the database.

    Raises AgentSecretError for a variable outside `widget.agent_secrets.ENV_PREFIX` or unset.
    """
    return agent_secret_resolve(site.agent_secret or "")


def site_greeting_metadata(site: Site) -> dict[str, Any]:
    """The greeting's metadata (its quick replies): stored with the greeting when the session
    starts, and shown by the widget page before that (the visitor's first message starts it)."""
    if site.agent_backend == BackendName.SCRIPTED:
        return ScriptedBackend.greeting_metadata(site.agent_config or {})
    quick = (site.agent_config or {}).get("quick_replies")
    return {
        "kind": "greeting",
        "backend": site.agent_backend,
        "quick_replies": [str(q)[:60] for q in quick[:4]] if isinstance(quick, list) else [],
    }


def widget_session_start(
    *,
    site: Site,
    page_url: str = "",
    referrer: str = "",
    utm: dict[str, str] | None = None,
    user_agent: str = "",
) -> tuple[ChatSession, str, list[ChatMessage]]:
    """Open a web session with the site's greeting; returns (session, raw token, transcript)."""
    with site_texts(site):
        return _widget_session_start(
            site=site, page_url=page_url, referrer=referrer, utm=utm, user_agent=user_agent
        )


def _widget_session_start(
    *, site: Site, page_url: str, referrer: str, utm: dict[str, str] | None, user_agent: str
) -> tuple[ChatSession, str, list[ChatMessage]]:
    greeting_agent = agent_version(backend=site.agent_backend, config=site.agent_config)
    session, token = session_start(
        site=site,
        page_url=page_url,
        referrer=referrer,
        utm={k: v for k, v in (utm or {}).items() if k in UTM_FIELDS},
        user_agent=user_agent,
        greeting=site_greeting(site),
        greeting_metadata=site_greeting_metadata(site),
        greeting_agent=greeting_agent.as_fields(),
    )
    return session, token, selectors.transcript_for_visitor(session)


def widget_message_post(*, session: ChatSession, text: str) -> WidgetTurn:
    """Store the visitor's message, ask the site's agent, store its reply and any lead fields.

    While an agent holds the session (sessions_app.takeover) the AI is not asked: the message
    is stored and the agent answers it; the widget's poll brings the answer.
    """
    # Committed on its own (message_add opens and closes its transaction) before the agent runs.
    visitor_message = message_add(session=session, role=MessageRole.VISITOR, text=text)
    if session.held_by_id is not None:
        visitor_typing_clear(session_pk=session.pk)  # the agent sees the message instead
        return WidgetTurn(messages=[visitor_message], session=session)
    answer = agent_answer(session=session, text=text)
    if answer.backend_name != BackendName.SCRIPTED and _taken_over_since(session):
        # An agent took the session over while a network agent was thinking (seconds): the
        # visitor now talks to a person, so the AI's late answer is dropped, not shown after
        # the join line. The in-process scripted agent answers in microseconds: no such window.
        return WidgetTurn(messages=[visitor_message], session=session)
    stored = [visitor_message, *agent_answer_store(session=session, answer=answer)]
    return WidgetTurn(messages=stored, session=session)


def _taken_over_since(session: ChatSession) -> bool:
    return ChatSession.objects.filter(pk=session.pk, held_by__isnull=False).exists()


@dataclass
class AgentAnswer:
    """What the site's agent made of the visitor's latest message, not stored yet."""

    reply: AgentReply
    lead: LeadFields | None
    metadata: dict[str, Any]
    backend_name: str
    # Which agent produced the reply (stored on its message; the replay compares by it).
    version: AgentVersion | None = None
    # What `_lead_screen` found about a new email (stored with it by lead_capture).
    email_quality: str | None = None
    consent_text: str | None = None
    # Why an offered email was refused (the site's policy), said to the visitor after the reply.
    refusals: list[str] = field(default_factory=list)


def agent_answer(*, session: ChatSession, text: str) -> AgentAnswer:
    """Ask the site's agent about the visitor's latest message (`text`, already stored).

    Through the site's budget and the bulkhead, within WIDGET_AGENT_TIMEOUT; a failure is an
    automation error and the fallback reply, never an exception. Writes nothing else: the
    caller stores the answer (`agent_answer_store`), in a transaction of its own choosing (a
    channel commits its outbox row with it). Never call it inside a transaction: the agent may
    take many seconds.
    """
    # The scripted agent's lines, the fallback and the handoff lines in the site's language.
    with site_texts(session.site):
        return _agent_answer(session=session, text=text)


def _agent_answer(*, session: ChatSession, text: str) -> AgentAnswer:
    site = session.site
    backend_name = site.agent_backend if site else BackendName.SCRIPTED
    budget = float(settings.WIDGET_AGENT_TIMEOUT)
    started = time.monotonic()
    conversation = _conversation(
        session, site, backends.history_messages(backend_name), deadline=started + budget
    )
    error: BackendError | None = None
    # The scripted agent answers in-process in microseconds: only network backends are bounded.
    bounded = backend_name != BackendName.SCRIPTED
    with agent_slot(
        backend=backend_name, session_id=str(session.public_id), bounded=bounded
    ) as slot:
        try:
            if not slot:
                # Counted and logged by the bulkhead; not an automation error (see there).
                raise BackendError("Too many agent calls at once.", permanent=False)
            # Behind the site's AI budgets (widget.budget): beyond one, the scripted flow answers.
            backend = metered_backend(
                backends.get_backend(backend_name), session=session, backend_name=backend_name
            )
            reply = backend.reply(conversation)
            lead = reply.lead
        except BackendError as exc:
            error = exc
        except Exception as exc:
            # A bug in a backend must end like an outage (fallback, error recorded), not a 500.
            logger.exception("Agent backend %s crashed", backend_name)
            error = BackendError(f"{type(exc).__name__}: {exc}", permanent=True)
    latency_ms = int((time.monotonic() - started) * 1000)

    if error is not None:
        reply, lead = _fallback(session, site, backend_name, error, text, latency_ms, record=slot)
    screened = _lead_screen(session=session, conversation=conversation, lead=lead)
    lead = screened.lead
    consent_shown = _consent_show(reply, conversation.lead_rules)

    metadata: dict[str, Any] = {
        "backend": backend_name,
        "model": reply.model,
        "latency_ms": latency_ms,
        "tokens": reply.tokens,
        "expects": reply.expects,
        "quick_replies": reply.quick_replies,
        **reply.extra,
    }
    if error is not None:
        metadata["fallback"] = True
    if not slot:
        metadata["bulkhead"] = True  # turned away, the agent was not asked
    if consent_shown:
        metadata["consent"] = consent_shown
    # The backend that answered: a budget reply names the scripted flow in its metadata.
    version = agent_version(
        backend=str(metadata.get("backend") or backend_name),
        config=site.agent_config if site else {},
        model=reply.model,
    )
    return AgentAnswer(
        reply=reply,
        lead=lead,
        metadata=metadata,
        backend_name=backend_name,
        version=version,
        email_quality=screened.email_quality,
        consent_text=screened.consent_text,
        refusals=screened.refusals,
    )


@dataclass
class _Screened:
    lead: LeadFields | None
    email_quality: str | None = None
    consent_text: str | None = None
    refusals: list[str] = field(default_factory=list)


def _lead_screen(
    *, session: ChatSession, conversation: Conversation, lead: LeadFields | None
) -> _Screened:
    """Check a new email beyond syntax, for every backend and channel (widget, Messenger).

    Runs here, outside any transaction, within LEAD_EMAIL_DNS_TIMEOUT (cached per domain). An
    address the site refuses (no MX, disposable) is dropped from the lead and the visitor is
    told why; the scripted agent has already asked again itself, so this only catches what a
    network backend offered. The consent stored is the privacy line the visitor was last shown.
    """
    if not lead or not lead.email or lead.email == session.lead_email:
        return _Screened(lead=lead)
    try:
        email = normalize_email(lead.email)
    except InvalidLead:
        return _Screened(lead=lead)  # lead_capture refuses it, with its reason
    check = email_check(email)
    rules = conversation.lead_rules
    refusal = email_refusal(
        check, refuse_no_mx=rules.refuse_no_mx, refuse_disposable=rules.refuse_disposable
    )
    if refusal:
        if check.suggestion:
            refusal += " " + gettext("Did you mean %(email)s?") % {"email": check.suggestion}
        return _Screened(lead=replace(lead, email=None) or None, refusals=[refusal])
    consent = _consent_seen(conversation)
    return _Screened(lead=lead, email_quality=check.quality, consent_text=consent)


def _consent_show(reply: AgentReply, rules: LeadRules) -> str:
    """Add the site's privacy line to a reply that asks for contact details; the line shown."""
    line = rules.privacy_line
    asks = reply.expects == "email" or reply.extra.get("step") in ("name", "email")
    if not line or not asks:
        return ""
    if line not in reply.text:
        reply.text = f"{reply.text}\n\n{line}"
    return line


def _consent_seen(conversation: Conversation) -> str:
    """The privacy line of the agent's latest message that showed one ("" if none did)."""
    for turn in reversed(conversation.history):
        if turn.role == MessageRole.AI and turn.metadata.get("consent"):
            return str(turn.metadata["consent"])
    return ""


def agent_answer_store(*, session: ChatSession, answer: AgentAnswer) -> list[ChatMessage]:
    """Store the agent's answer: its lead fields (completing the session) and its message(s)."""
    with site_texts(session.site):
        return _agent_answer_store(session=session, answer=answer)


def _agent_answer_store(*, session: ChatSession, answer: AgentAnswer) -> list[ChatMessage]:
    reply, lead, metadata, backend_name = (
        answer.reply,
        answer.lead,
        answer.metadata,
        answer.backend_name,
    )
    stored: list[ChatMessage] = []
    version_fields = answer.version.as_fields() if answer.version else AgentVersionFields()
    # With a lead or a request for a person, those and the reply commit together; otherwise
    # message_add's own transaction is all there is (no outer block, so no savepoint on the
    # common path).
    with transaction.atomic() if lead or reply.handoff else contextlib.nullcontext():
        problem: InvalidLead | None = None
        if lead:
            try:
                lead_capture(
                    session=session,
                    name=lead.name,
                    email=lead.email,
                    phone=lead.phone,
                    data=lead.data or None,
                    email_quality=answer.email_quality if lead.email else None,
                    consent_text=answer.consent_text if lead.email else None,
                    declined_reason=lead.declined,
                )
            except InvalidLead as exc:
                problem = exc
        text = reply.text
        if reply.handoff:
            text, metadata = _handoff_text(session, text, metadata)
        stored.append(
            message_add(
                session=session,
                role=MessageRole.AI,
                text=text,
                metadata=metadata,
                **version_fields,
            )
        )
        for refusal in answer.refusals:
            # The site refuses this address (widget.models.Site.email_refuse_*): say why.
            stored.append(
                message_add(
                    session=session,
                    role=MessageRole.AI,
                    text=f"{refusal} {gettext('Could you give me another email?')}",
                    metadata={"backend": backend_name, "kind": "lead_refused", "expects": "email"},
                )
            )
        if problem is not None:
            # The backend passed on a value our rules refuse (n8n may not validate): say why,
            # in the agent's voice, and ask again.
            stored.append(
                message_add(
                    session=session,
                    role=MessageRole.AI,
                    text=_invalid_lead_text(problem),
                    metadata={
                        "backend": backend_name,
                        "kind": "lead_invalid",
                        "expects": "email" if problem.field == "email" else "text",
                    },
                    **version_fields,
                )
            )
    return stored


def _invalid_lead_text(problem: InvalidLead) -> str:
    """The agent asks again for a value our rules refused (the reason is English only: in
    another language the visitor reads the field, and what it needs where we can say it)."""
    english = (get_language() or "en").startswith("en")
    if problem.field == "email":
        reason = str(problem) if english else _email_needs()
        return gettext("That email doesn't look right: %(problem)s Could you check it?") % {
            "problem": reason
        }
    if problem.field == "phone":
        reason = str(problem) if english else ""
        text = gettext("That phone number doesn't look right: %(problem)s Could you check it?")
        return " ".join((text % {"problem": reason}).split())
    reason = str(problem) if english else ""
    text = gettext("That name doesn't look right: %(problem)s Could you check it?")
    return " ".join((text % {"problem": reason}).split())


def _email_needs() -> str:
    return gettext("An email address needs a name, an @ and a domain, like name@example.com.")


def _handoff_text(
    session: ChatSession, text: str, metadata: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Mark the session "needs a human" and word what the visitor is told: the backend's own
    words (if any) and then who will answer, in or outside the site's opening hours (after the
    lead fields of this turn are stored, so an email given with the request is not asked for)."""
    human_request(session=session)
    answer = handoff_reply(site=session.site, session=session)
    metadata = {
        **metadata,
        "kind": "handoff",
        "handoff": "in_hours" if answer.in_hours else "out_of_hours",
        "expects": answer.expects,
        "quick_replies": [],
    }
    if answer.expects == "email":
        # The scripted agent reads the step of its last message: the next one is the email.
        metadata["step"] = "email"
    return (f"{text}\n\n{answer.text}" if text.strip() else answer.text), metadata


def _conversation(
    session: ChatSession, site: Site | None, history: int, *, deadline: float
) -> Conversation:
    turns = selectors.recent_turns(session, history)
    secret, secret_error = "", ""
    if site:
        try:
            secret = site_secret(site)
        except AgentSecretError as exc:
            secret_error = str(exc)  # the backend raises it: fallback and an automation error
    return Conversation(
        session_id=str(session.public_id),
        site_name=site.name if site else "",
        config=dict(site.agent_config or {}) if site else {},
        secret=secret,
        secret_error=secret_error,
        history=[Turn(role=m.role, text=m.text, metadata=m.metadata or {}) for m in turns],
        lead=LeadFields(
            name=session.lead_name or None,
            email=session.lead_email or None,
            phone=session.lead_phone or None,
        ),
        page_url=session.page_url,
        referrer=session.referrer,
        utm=session.utm,
        deadline=deadline,
        lead_rules=_lead_rules(site),
    )


def _lead_rules(site: Site | None) -> LeadRules:
    if site is None:
        return LeadRules()
    return LeadRules(
        refuse_no_mx=site.email_refuse_no_mx,
        refuse_disposable=site.email_refuse_disposable,
        phone_region=site.phone_default_region,
        contact_line=site.contact_line,
        privacy_line=site.privacy_line,
    )


def _fallback(
    session: ChatSession,
    site: Site | None,
    backend_name: str,
    error: BackendError,
    text: str,
    latency_ms: int,
    *,
    record: bool = True,
) -> tuple[AgentReply, LeadFields | None]:
    """Record the failure and build the polite reply; keep any lead fields already given."""
    if record:
        _fallback_record(session, site, backend_name, error, latency_ms)
    return _fallback_reply(session, error, text)


def _fallback_record(
    session: ChatSession,
    site: Site | None,
    backend_name: str,
    error: BackendError,
    latency_ms: int,
) -> None:
    automation_error_record(
        message=str(error),
        source=AutomationError.Source.AGENT,
        workflow=f"{backend_name} agent",
        node=site.name if site else "",
        details={
            "backend": backend_name,
            "permanent": error.permanent,
            "status_code": error.status_code,
            "latency_ms": latency_ms,
            "site_key": site.public_key if site else "",
            **error.details,
        },
        session=session,
    )
    logger.warning(
        "Agent backend %s failed for session %s (%s): %s",
        backend_name,
        session.public_id,
        "permanent" if error.permanent else "temporary",
        error,
    )


def _fallback_reply(
    session: ChatSession, error: BackendError, text: str
) -> tuple[AgentReply, LeadFields | None]:
    # Whatever the visitor offered (a tool call that got through, an email in the text) is
    # still captured, so an outage does not cost the lead.
    offered = extract_lead(text)
    partial = error.partial_lead or LeadFields()
    lead = LeadFields(
        name=partial.name or (offered.name if not session.lead_name else None),
        email=partial.email or (offered.email if not session.lead_email else None),
        phone=partial.phone,
    )
    if asks_for_human(text):
        # The backend is down, but the visitor who asked for a person still gets one.
        return AgentReply(text="", model="", handoff=True), lead or None
    has_email = bool(session.lead_email or lead.email)
    reply_text = gettext(FALLBACK_REPLY) + ("" if has_email else f" {gettext(FALLBACK_ASK_EMAIL)}")
    reply = AgentReply(text=reply_text, expects="text" if has_email else "email", model="")
    return reply, lead or None
