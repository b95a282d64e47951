"""AI budgets per site: what an anonymous visitor may spend on the site's network backend.

Four limits live on `Site`: tokens and backend calls, each per session and per day. Before a
visitor message reaches n8n or an OpenAI-compatible backend, `budget_admit` counts the call, in
the database and in one short transaction, on the session (`ChatSession.ai_calls`) and on the
site's row for the day (`SiteDailyUsage`); each counter is raised by a conditional UPDATE whose
WHERE holds the limit, so under any number of concurrent requests, in any number of processes,
the row lock lets exactly `limit` calls through. Tokens are only known once the backend answers:
`budget_spend` adds them afterwards (F() updates), so concurrent replies that were all admitted
under the limit may overshoot a token budget by what they use; the next message is refused.

Beyond a budget the backend is not called: `MeteredBackend` answers with the polite fallback
and the scripted backend's lead questions (a visitor can still leave a name and an email), and
the first request of the day to meet a budget records one AutomationError for the site.

The day is the calendar day in settings.TIME_ZONE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from sessions_app.models import AutomationError, ChatSession
from sessions_app.services import automation_error_record
from widget.backends import AgentBackend, AgentReply, BackendError, Conversation
from widget.backends.scripted import ScriptedBackend
from widget.models import BackendName, Site, SiteDailyUsage

logger = logging.getLogger(__name__)

# Backends that cost money per message; the scripted one runs in process and is never metered.
METERED_BACKENDS = frozenset({BackendName.N8N, BackendName.OPENAI})


@dataclass(frozen=True)
class BudgetSpent:
    """The budget that refused a call: which one, its limit and what had been used."""

    kind: str  # session_tokens / session_calls / daily_tokens / daily_calls
    limit: int
    used: int

    @property
    def description(self) -> str:
        what = "tokens" if self.kind.endswith("tokens") else "backend calls"
        per = "this conversation" if self.kind.startswith("session") else "today"
        return f"{self.used:,} of {self.limit:,} {what} used for {per}"


# The session was erased while its visitor wrote: nothing to count or report; storing the reply
# then fails the way widget.services expects (ChatSession.DoesNotExist, a 404).
SESSION_GONE = BudgetSpent(kind="session_gone", limit=0, used=0)


def budget_day(now=None) -> date:
    return timezone.localdate(now or timezone.now(), timezone.get_default_timezone())


def budget_admit(
    *, session: ChatSession, site: Site, day: date | None = None
) -> BudgetSpent | None:
    """Count one backend call against the site's budgets; None if the call may go ahead.

    Nothing is counted when a budget refuses: the session's and the day's increments commit
    together or not at all.
    """
    day = day or budget_day()
    _usage_row_ensure(site=site, day=day)
    with transaction.atomic():
        # Session first, then the day, in every writer (budget_spend too): one lock order, so
        # two requests never wait on each other's rows.
        session_ok = (
            ChatSession.objects.filter(pk=session.pk)
            .filter(_under("ai_calls", site.ai_session_message_budget))
            .filter(_under("ai_tokens", site.ai_session_token_budget))
            .update(ai_calls=F("ai_calls") + 1)
        )
        day_ok = session_ok and (
            SiteDailyUsage.objects.filter(site=site, day=day)
            .filter(_under("ai_calls", site.ai_daily_message_budget))
            .filter(_under("ai_tokens", site.ai_daily_token_budget))
            .update(ai_calls=F("ai_calls") + 1)
        )
        if session_ok and day_ok:
            session.ai_calls += 1
            return None
        # The session's increment (if any) must not outlive the refusal.
        transaction.set_rollback(True)
    return _which_budget(session=session, site=site, day=day)


def budget_spend(*, session: ChatSession, site: Site, tokens: int, day: date | None = None) -> None:
    """Add the tokens a backend reported to the session and to the site's day."""
    if tokens <= 0:
        return
    day = day or budget_day()
    _usage_row_ensure(site=site, day=day)
    with transaction.atomic():
        ChatSession.objects.filter(pk=session.pk).update(ai_tokens=F("ai_tokens") + tokens)
        SiteDailyUsage.objects.filter(site=site, day=day).update(ai_tokens=F("ai_tokens") + tokens)
    session.ai_tokens += tokens


def budget_refusal_record(
    *, session: ChatSession, site: Site, spent: BudgetSpent, backend_name: str, day: date
) -> bool:
    """Count a refused message; the day's first refusal also records the admin's error.

    Returns True when this call recorded the error. The flag and the error commit together, so
    a crash between them cannot use up the day's one alert without recording it.
    """
    now = timezone.now()
    with transaction.atomic():
        SiteDailyUsage.objects.filter(site=site, day=day).update(
            budget_replies=F("budget_replies") + 1
        )
        first = SiteDailyUsage.objects.filter(
            site=site, day=day, budget_alerted_at__isnull=True
        ).update(budget_alerted_at=now)
        if first:
            automation_error_record(
                message=(
                    f"AI budget reached on {site.name}: {spent.description}. Visitors get the "
                    "fallback reply and the scripted lead questions until the budget allows "
                    "again (this error is recorded once per day)."
                ),
                source=AutomationError.Source.AGENT,
                workflow=f"{backend_name} agent budget",
                node=site.name,
                details={
                    "budget": spent.kind,
                    "limit": spent.limit,
                    "used": spent.used,
                    "day": day.isoformat(),
                    "site_key": site.public_key,
                    "backend": backend_name,
                },
                session=session,
            )
    if first:
        logger.warning("AI budget reached for site %s: %s", site.public_key, spent.description)
    return bool(first)


def budget_reply(conversation: Conversation, spent: BudgetSpent) -> AgentReply:
    """The reply in place of the backend's: the polite fallback, then the scripted flow."""
    from widget.services import FALLBACK_REPLY  # widget.services imports this module

    scripted = ScriptedBackend().reply(conversation)
    # The apology once per run of budget replies: the visitor then just follows the questions.
    already = any(
        turn.role == "ai" and turn.metadata.get("budget") for turn in conversation.history[-2:]
    )
    text = scripted.text if already else f"{gettext(FALLBACK_REPLY)} {scripted.text}"
    if scripted.handoff:
        text = ""  # widget.services tells the visitor who will answer; no apology needed
    return AgentReply(
        text=text,
        lead=scripted.lead,
        expects=scripted.expects,
        model=scripted.model,
        extra={
            **scripted.extra,
            "backend": ScriptedBackend.name,
            "budget": spent.kind,
            "fallback": True,
            # Not an AI reply time: the stats' average latency must not count it.
            "latency_ms": None,
        },
        handoff=scripted.handoff,
    )


class MeteredBackend:
    """The site's backend behind its budgets: admit, call, count the tokens; or refuse."""

    def __init__(self, backend: AgentBackend, *, session: ChatSession, site: Site) -> None:
        self.backend = backend
        self.session = session
        self.site = site
        self.name = backend.name
        self.history_messages = getattr(backend, "history_messages", None)

    def reply(self, conversation: Conversation) -> AgentReply:
        day = budget_day()
        spent = budget_admit(session=self.session, site=self.site, day=day)
        if spent is SESSION_GONE:
            return budget_reply(conversation, spent)
        if spent is not None:
            budget_refusal_record(
                session=self.session,
                site=self.site,
                spent=spent,
                backend_name=self.site.agent_backend,
                day=day,
            )
            return budget_reply(conversation, spent)
        try:
            reply = self.backend.reply(conversation)
        except BackendError as exc:
            # A reply that failed after a first completion still used those tokens.
            self._spend(exc.details.get("tokens"), day)
            raise
        self._spend(reply.tokens, day)
        return reply

    def _spend(self, tokens: object, day: date) -> None:
        total = tokens.get("total") if isinstance(tokens, dict) else None
        if isinstance(total, int) and not isinstance(total, bool):
            budget_spend(session=self.session, site=self.site, tokens=total, day=day)


def metered_backend(
    backend: AgentBackend, *, session: ChatSession, backend_name: str
) -> AgentBackend:
    """`backend` behind the session's site budgets when it is a paid network backend."""
    site = session.site
    if site is None or backend_name not in METERED_BACKENDS:
        return backend
    return MeteredBackend(backend, session=session, site=site)


def _under(field: str, limit: int | None) -> Q:
    return Q() if limit is None else Q(**{f"{field}__lt": limit})


def _usage_row_ensure(*, site: Site, day: date) -> None:
    # INSERT ... ON CONFLICT DO NOTHING (INSERT OR IGNORE on SQLite): the first request of the
    # day creates the row, concurrent ones meet the unique constraint and count on that row.
    # get_or_create would need a savepoint and a retry for the same race.
    SiteDailyUsage.objects.bulk_create([SiteDailyUsage(site=site, day=day)], ignore_conflicts=True)


def _which_budget(*, session: ChatSession, site: Site, day: date) -> BudgetSpent:
    row = ChatSession.objects.filter(pk=session.pk).values_list("ai_calls", "ai_tokens").first()
    if row is None:
        return SESSION_GONE
    calls, tokens = row
    usage = SiteDailyUsage.objects.get(site=site, day=day)
    checks = [
        ("session_calls", site.ai_session_message_budget, calls),
        ("session_tokens", site.ai_session_token_budget, tokens),
        ("daily_calls", site.ai_daily_message_budget, usage.ai_calls),
        ("daily_tokens", site.ai_daily_token_budget, usage.ai_tokens),
    ]
    limited = [(kind, limit, used) for kind, limit, used in checks if limit is not None]
    for kind, limit, used in limited:
        if used >= limit:
            return BudgetSpent(kind=kind, limit=limit, used=used)
    if not limited:
        # Refused with no limit set: the row went away meanwhile. Nothing to count or report.
        return SESSION_GONE
    # Refused, yet no counter is at its limit now: a limit was raised between the refusal and
    # this read. Report the fullest budget.
    kind, limit, used = max(limited, key=lambda c: c[2] / max(c[1], 1))
    return BudgetSpent(kind=kind, limit=limit, used=used)
