"""Rate limits of the public widget API, kept in the cache (share it across processes).

Rates are read from settings on every request, so a deployment (or a test) can change them.
The client IP comes from REMOTE_ADDR, or from X-Forwarded-For only as far as
WIDGET_TRUSTED_PROXIES says proxies we run have appended to it: trusting the whole header would
let anyone pick a fresh "IP" per request and step around every limit.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = int(settings.WIDGET_TRUSTED_PROXIES)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


class _SettingsRateThrottle(SimpleRateThrottle):
    setting: str = ""
    period: str = "min"

    def get_rate(self) -> str:
        return f"{int(getattr(settings, self.setting))}/{self.period}"


class WidgetIPThrottle(_SettingsRateThrottle):
    """Every widget API request, per client IP per minute."""

    scope = "widget-ip"
    setting = "WIDGET_REQUESTS_PER_IP_PER_MINUTE"

    def get_cache_key(self, request, view) -> str:
        return f"throttle:{self.scope}:{client_ip(request)}"


class SessionStartThrottle(_SettingsRateThrottle):
    """New sessions per client IP per hour."""

    scope = "widget-session-start"
    setting = "WIDGET_SESSIONS_PER_IP_PER_HOUR"
    period = "hour"

    def get_cache_key(self, request, view) -> str:
        return f"throttle:{self.scope}:{client_ip(request)}"


class SessionMessageThrottle(_SettingsRateThrottle):
    """Visitor messages per session per minute (checked after the visitor token)."""

    scope = "widget-session-messages"
    setting = "WIDGET_MESSAGES_PER_SESSION_PER_MINUTE"

    def get_cache_key(self, request, view) -> str:
        return f"throttle:{self.scope}:{view.kwargs.get('session_id', '')}"
