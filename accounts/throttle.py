"""Password-guessing throttle, per client IP and per username, counted in the cache.

Every check of a password against an account (sign-in on the dashboard and the admin, the old
password on both password-change pages) first reserves an attempt: one atomic increment per
key (`leadchat.ratelimit.window_hit`, shared with the widget's rate limits) in a fixed window of
LOGIN_THROTTLE_WINDOW_SECONDS from the first attempt. Only an attempt whose own increment stays
within both limits may check the password. Counting after the check (as before) let N parallel
guesses all read "under the limit" and all be checked; reserving first means N parallel
attempts check at most `limit` passwords, whatever the timing.

A right password gives its reservation back: the username's count is cleared (whoever typed it
knows the password) and the IP's count loses that one attempt, so the IP limit counts failures
only. A success never clears the IP's other failures: one good account must not reset an
attacker's budget for guessing others from the same address.

Past either limit the answer is the same whether or not the username exists, so the throttle
reveals nothing about accounts. Keys hold keyed hashes only (`leadchat.http.cache_key_part`);
usernames are folded to lower case, as Django matches ours at sign-in.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from leadchat.http import cache_key_part, client_ip
from leadchat.ratelimit import window_clear, window_counts, window_hit, window_release

PREFIX = "login-failures"


def _keys(request: HttpRequest, username: str) -> dict[str, str]:
    return {
        "ip": f"{PREFIX}:ip:{cache_key_part('login-ip', client_ip(request))}",
        "user": f"{PREFIX}:user:{cache_key_part('login-user', username.strip().lower())}",
    }


def _limits() -> dict[str, int]:
    return {
        "ip": settings.LOGIN_FAILURES_PER_IP,
        "user": settings.LOGIN_FAILURES_PER_USERNAME,
    }


def attempt_reserve(request: HttpRequest, username: str) -> bool:
    """Count one password attempt for this IP and username; True if it may be checked.

    Both keys are always counted (a refused attempt counts too: the window is fixed, so this
    never lengthens a lockout, and it keeps every count monotonic while attempts race).
    """
    keys, limits = _keys(request, username), _limits()
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    allowed = True
    for kind, key in keys.items():
        hits, _ = window_hit(key, window)
        allowed = allowed and hits <= limits[kind]
    return allowed


def attempt_succeeded(request: HttpRequest, username: str) -> None:
    """The reserved attempt had the right password: give it back (see the module docstring)."""
    keys = _keys(request, username)
    window_clear(keys["user"])
    window_release(keys["ip"])


def login_blocked(request: HttpRequest, username: str) -> bool:
    """Whether the next attempt would be refused (read only, counts nothing)."""
    keys, limits = _keys(request, username), _limits()
    counts = window_counts(list(keys.values()))
    return any(counts[keys[kind]] >= limits[kind] for kind in keys)
