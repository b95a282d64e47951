"""A visitor asks for a person: what they are told, and who is emailed when nobody comes.

The request itself is `sessions_app.services.human_request` (the flag, its history row), made by
`widget.services.agent_answer_store` when a backend's reply has `handoff`. This module holds
what needs the site: its opening hours (inside them "someone will join"; outside them "the team
will write back by email", asking for the address when the session has none) and its notify
list, emailed by a job of the delivery worker when a request waits longer than
HANDOFF_EMAIL_AFTER_MINUTES. Never from a request: the email is an outbox row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext, gettext_noop

from sessions_app.delivery import email_enqueue
from sessions_app.models import ChatSession
from sessions_app.selectors import human_requests_waiting
from sessions_app.services import human_request_notify_claim
from widget.models import WEEKDAYS, Site

logger = logging.getLogger(__name__)

JOB_NAME = "handoff-emails"
HANDOFF_EMAIL_EVENT = "session.human_waiting"

# What the visitor is told, in English here; said through gettext in the site's language
# (widget.services calls handoff_reply inside widget.i18n.site_texts).
IN_HOURS_REPLY = gettext_noop(
    "I've asked someone from the team to join this chat. They'll be with you shortly."
)
OUT_OF_HOURS_REPLY = gettext_noop(
    "Our team isn't available right now (%(hours)s), so a person can't join the chat. They'll "
    "write back to you by email as soon as they're in."
)
ASK_EMAIL = gettext_noop("What's the best email address to reach you?")
HAVE_EMAIL = gettext_noop("We'll write to %(email)s.")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def time_zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone `name`, or None (checked against the list, never a path on disk)."""
    if name not in _zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def site_time_zone(site: Site) -> ZoneInfo:
    return time_zone_named(site.hours_timezone) or ZoneInfo(settings.TIME_ZONE)


def site_is_open(site: Site | None, *, now: datetime | None = None) -> bool:
    """Whether a person can answer now: always, unless the site has opening hours and `now`
    (in the site's zone) is outside them. A window whose closing time is before its opening
    time runs past midnight; its night belongs to the day it opened."""
    if site is None or site.opens_at is None or site.closes_at is None:
        return True
    local = (now or timezone.now()).astimezone(site_time_zone(site))
    days = set(site.opening_days or WEEKDAYS)
    today, clock = WEEKDAYS[local.weekday()], local.time().replace(tzinfo=None)
    opens, closes = site.opens_at, site.closes_at
    if opens < closes:
        return today in days and opens <= clock < closes
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    return (today in days and clock >= opens) or (yesterday in days and clock < closes)


def opening_hours_text(site: Site) -> str:
    """ "Mon-Fri 09:00-17:00 Europe/Madrid", for the visitor and the emails."""
    if site.opens_at is None or site.closes_at is None:
        return ""
    days = [d for d in WEEKDAYS if d in set(site.opening_days or WEEKDAYS)]
    return (
        f"{_days_text(days)} {_hhmm(site.opens_at)}-{_hhmm(site.closes_at)} {site_time_zone(site)}"
    )


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def _days_text(days: list[str]) -> str:
    """ "Mon-Fri", "Mon, Wed", "every day": in the active language (Django's own day names)."""
    if len(days) == 7:
        return gettext("every day")
    indexes = [WEEKDAYS.index(d) for d in days]
    if len(days) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return f"{_day(indexes[0])}-{_day(indexes[-1])}"
    return ", ".join(_day(i) for i in indexes)


def _day(index: int) -> str:
    return str(WEEKDAYS_ABBR[index])


@dataclass(frozen=True)
class HandoffReply:
    text: str
    expects: str  # "email" when the visitor is asked for an address
    in_hours: bool


def handoff_reply(
    *, site: Site | None, session: ChatSession, now: datetime | None = None
) -> HandoffReply:
    """What the visitor is told after asking for a person (the session's lead as stored now)."""
    if site is None or site_is_open(site, now=now):
        return HandoffReply(text=gettext(IN_HOURS_REPLY), expects="text", in_hours=True)
    text = gettext(OUT_OF_HOURS_REPLY) % {"hours": opening_hours_text(site)}
    if session.lead_email:
        have = gettext(HAVE_EMAIL) % {"email": session.lead_email}
        return HandoffReply(text=f"{text} {have}", expects="text", in_hours=False)
    return HandoffReply(text=f"{text} {gettext(ASK_EMAIL)}", expects="email", in_hours=False)


# --- The email when nobody came ----------------------------------------------------------------


def dashboard_session_url(session: ChatSession) -> str:
    path = reverse("dashboard:session", kwargs={"public_id": session.public_id})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def handoff_emails_queue(*, now: datetime | None = None, limit: int = 100) -> int:
    """Queue the email of each request for a person older than HANDOFF_EMAIL_AFTER_MINUTES
    that nobody took and that was not emailed yet; returns how many requests it handled.

    Each request is claimed (`human_request_notify_claim`) in the transaction that writes its
    outbox row, so it is emailed once, never after an agent cleared it, and a worker killed
    between the two leaves neither. `now` lets tests drive the clock.
    """
    now = now or timezone.now()
    requested_before = now - timedelta(minutes=settings.HANDOFF_EMAIL_AFTER_MINUTES)
    handled = 0
    for session in human_requests_waiting(requested_before=requested_before, limit=limit):
        with transaction.atomic():
            if not human_request_notify_claim(
                session_id=session.pk, requested_before=requested_before, now=now
            ):
                continue  # taken, cleared or emailed by another worker meanwhile
            handled += 1
            site = session.site
            recipients = notify_recipients(site)
            if not recipients:
                logger.info(
                    "Session %s waits for a person; its site has no notify emails.", session.pk
                )
                continue
            _handoff_email_enqueue(session=session, site=site, to=recipients, now=now)
    return handled


def notify_recipients(site: Site | None) -> list[str]:
    """The site's notify list as stored (Site.clean checks it; a row written around the admin
    may hold anything, and a string must not become one address per character)."""
    emails = site.notify_emails if site is not None else []
    if not isinstance(emails, list):
        return []
    return [e.strip() for e in emails if isinstance(e, str) and "@" in e]


def _handoff_email_enqueue(
    *, session: ChatSession, site: Site | None, to: list[str], now: datetime
) -> None:
    waited = now - (session.human_requested_at or now)
    context = {
        "session": session,
        "site_name": site.name if site else "",
        "who": session.lead_name or session.lead_email or "A visitor",
        "minutes": max(1, int(waited.total_seconds() // 60)),
        "opening_hours": opening_hours_text(site) if site else "",
        "in_hours": site_is_open(site, now=now),
        "url": dashboard_session_url(session),
    }
    email_enqueue(
        event_type=HANDOFF_EMAIL_EVENT,
        to=to,
        subject=f"[leadchat] {context['who']} is waiting for a person ({context['site_name']})",
        text=render_to_string("emails/handoff_waiting.txt", context),
        html=render_to_string("emails/handoff_waiting.html", context),
        session=session,
        subject_email=session.lead_email,
    )


def handoff_emails_run(worker: str, limit: int) -> int:
    """The delivery worker's job (registered in WidgetConfig.ready())."""
    return handoff_emails_queue(limit=limit)
