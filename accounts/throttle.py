"""Sign-in throttling, per client IP and per username, counted in the cache.

Failed attempts are counted in a fixed window (LOGIN_THROTTLE_WINDOW_SECONDS) from the first
failure (`leadchat.ratelimit`, shared with the widget's rate limits). Past either limit every
attempt is refused before the password is even checked, with the same answer whether or not the
username exists, so the throttle reveals nothing about accounts. Usernames are hashed in cache keys
(case-insensitively, as Django matches them at sign-in for our users): keys never carry what
someone typed.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest

from leadchat.http import client_ip
from leadchat.ratelimit import window_clear, window_counts, window_hit

PREFIX = "login-failures"


def _keys(request: HttpRequest, username: str) -> dict[str, str]:
    user_hash = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    ip_hash = hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]
    return {"ip": f"{PREFIX}:ip:{ip_hash}", "user": f"{PREFIX}:user:{user_hash}"}


def _limits() -> dict[str, int]:
    return {
        "ip": settings.LOGIN_FAILURES_PER_IP,
        "user": settings.LOGIN_FAILURES_PER_USERNAME,
    }


def login_blocked(request: HttpRequest, username: str) -> bool:
    keys, limits = _keys(request, username), _limits()
    counts = window_counts(list(keys.values()))
    return any(counts[keys[kind]] >= limits[kind] for kind in keys)


def login_failed(request: HttpRequest, username: str) -> None:
    for key in _keys(request, username).values():
        window_hit(key, settings.LOGIN_THROTTLE_WINDOW_SECONDS)


def login_succeeded(request: HttpRequest, username: str) -> None:
    """A right password clears the username's count (not the IP's: one good account must not
    reset an attacker's budget for guessing others from the same address)."""
    window_clear(_keys(request, username)["user"])
