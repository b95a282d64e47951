"""Rate limits of the public widget API, kept in the cache (share it across processes).

Rates are read from settings on every request, so a deployment (or a test) can change them.
The client IP is `leadchat.http.client_ip` (X-Forwarded-For only as far as our own proxies
wrote it).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from leadchat.http import client_ip


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
