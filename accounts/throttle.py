"""Sign-in throttling, per client IP and per username, counted in the cache.

Failed attempts are counted in a fixed window (LOGIN_THROTTLE_WINDOW_SECONDS) from the first
failure. Past either limit every attempt is refused before the password is even checked, with
the same answer whether or not the username exists, so the throttle reveals nothing about
accounts. Usernames are hashed in cache keys (case-insensitively, as Django matches them at
sign-in for our users): keys never carry what someone typed.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from leadchat.http import client_ip

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
    counts = cache.get_many(list(keys.values()))
    return any(counts.get(keys[kind], 0) >= limits[kind] for kind in keys)


def login_failed(request: HttpRequest, username: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    for key in _keys(request, username).values():
        # add() starts the window only if no count exists; incr() is atomic in shared caches.
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout=window)


def login_succeeded(request: HttpRequest, username: str) -> None:
    """A right password clears the username's count (not the IP's: one good account must not
    reset an attacker's budget for guessing others from the same address)."""
    cache.delete(_keys(request, username)["user"])
