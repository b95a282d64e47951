"""Rate limits of the public widget API, kept in the cache (share it across processes).

Each limit counts hits in a fixed window opened by the first hit (`leadchat.ratelimit`); a
refused request answers 429 with Retry-After set to the time left in the window. Rates are
read from settings on every request, so a deployment (or a test) can change them. The client
IP is `leadchat.http.client_ip` (X-Forwarded-For only as far as our own proxies wrote it).
Identities go into cache keys only as keyed hashes (`leadchat.http.cache_key_part`).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from leadchat.http import cache_key_part, client_ip
from leadchat.ratelimit import window_hit


class _WindowThrottle(BaseThrottle):
    scope: str = ""
    setting: str = ""  # the settings name of the limit
    window: int = 60  # seconds

    def ident_for(self, request: Request, view: APIView) -> str:
        return client_ip(request)

    def allow_request(self, request: Request, view: APIView) -> bool:
        return self.allow(self.ident_for(request, view))

    def allow(self, ident: str) -> bool:
        """Count a hit for `ident`; whether it is within the limit (`wait()` says for how long
        not). DRF's views come through `allow_request`; the lean poll (widget.live) calls it
        with the same identities."""
        key = f"throttle:{self.scope}:{cache_key_part(self.scope, ident)}"
        hits, self.resets_in = window_hit(key, self.window)
        return hits <= int(getattr(settings, self.setting))

    def wait(self) -> float:
        return self.resets_in


class WidgetIPThrottle(_WindowThrottle):
    """Every widget API request, per client IP per minute."""

    scope = "widget-ip"
    setting = "WIDGET_REQUESTS_PER_IP_PER_MINUTE"


class SessionStartThrottle(_WindowThrottle):
    """New sessions per client IP per hour."""

    scope = "widget-session-start"
    setting = "WIDGET_SESSIONS_PER_IP_PER_HOUR"
    window = 3600


class AvailabilityIPThrottle(_WindowThrottle):
    """The embed script's availability checks, per client IP per minute.

    One per page view of every page that embeds the chat, so a budget apart from
    WidgetIPThrottle: an office behind one NAT browsing the site must not use up the budget
    its visitors need to write (nor hide the launcher because they chat a lot).
    """

    scope = "widget-availability-ip"
    setting = "WIDGET_AVAILABILITY_PER_IP_PER_MINUTE"


class OpeningThrottle(_WindowThrottle):
    """Counted openings of the chat per client IP per hour (the overview's funnel)."""

    scope = "widget-openings"
    setting = "WIDGET_OPENINGS_PER_IP_PER_HOUR"
    window = 3600


class SessionMessageThrottle(_WindowThrottle):
    """Visitor messages per session per minute (checked after the visitor token).

    Keyed on the session's primary key, found by the VisitorSession permission, never on the
    URL's text: uuid.UUID() reads one session id in many spellings (upper case, no dashes,
    `urn:uuid:`, braces), and each spelling would otherwise get a limit of its own, each
    message a paid agent call. Permissions run before throttles, so the limit still applies
    before the agent is asked.
    """

    scope = "widget-session-messages"
    setting = "WIDGET_MESSAGES_PER_SESSION_PER_MINUTE"

    def ident_for(self, request: Request, view: APIView) -> str:
        # Set by the VisitorSession permission, which runs first (DRF types `view` as APIView).
        return str(view.widget_session.pk)  # type: ignore[attr-defined]


class WidgetPollIPThrottle(_WindowThrottle):
    """The open widgets' polls for new messages, per client IP per minute.

    A budget apart from WidgetIPThrottle: each open chat polls every LIVE_POLL_MS, so a few
    visitors behind one office NAT would otherwise use up the IP's budget for real messages.
    Still counted before the session lookup, so guessing session ids is as bounded as ever.
    """

    scope = "widget-poll-ip"
    setting = "WIDGET_POLLS_PER_IP_PER_MINUTE"


class SessionPollThrottle(SessionMessageThrottle):
    """Polls per session per minute (a visitor with the chat open in a few tabs stays within)."""

    scope = "widget-session-polls"
    setting = "WIDGET_POLLS_PER_SESSION_PER_MINUTE"
