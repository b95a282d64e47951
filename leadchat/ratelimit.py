"""Fixed-window hit counters in the cache, for rate limits.

A window opens with a key's first hit and lasts `window` seconds. Each hit is one atomic
`incr` (in a shared cache such as Redis, several processes count together without losing
hits), so the cost of a hit does not grow with the limit. DRF's own throttles keep a list of
every timestamp in the window instead and rewrite it on each request: with a generous limit
that list, and the time spent pickling it, grows with the traffic.

When the cache is unreachable every function here fails OPEN (`leadchat.cache_guard`): a hit
counts as the first of its window, counts read 0, so no visitor is refused for lack of a
counter; the failure is logged and counted.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from leadchat.cache_guard import cache_call


def _keys(key: str) -> tuple[str, str]:
    return f"{key}:hits", f"{key}:start"


def window_hit(key: str, window: int) -> tuple[int, float]:
    """Count a hit on `key`; returns (hits in the current window, seconds until it closes).

    (0, window) when the cache is unreachable: below every limit.
    """
    return cache_call("ratelimit-hit", lambda: _window_hit(key, window), (0, float(window)))


def _window_hit(key: str, window: int) -> tuple[int, float]:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return _redis_window_hit(backend, key, window)
    hits_key, start_key = _keys(key)
    now = time.time()
    try:
        hits = cache.incr(hits_key)
    except ValueError:  # no open window: this hit opens one (or a concurrent first hit did)
        cache.set(start_key, now, timeout=window)
        hits = 1 if cache.add(hits_key, 1, timeout=window) else cache.incr(hits_key)
    # The start key is written just before the count, so it never outlives it; if it is gone
    # the window is about to close, and a full window is the safe answer.
    start = cache.get(start_key, now)
    return hits, max(0.0, start + window - now)


def _redis_window_hit(backend: RedisCache, key: str, window: int) -> tuple[int, float]:
    # Django's RedisCache.incr is EXISTS then INCR: a counter expiring in between is recreated
    # by INCR without a TTL and would then count (and refuse) forever. One MULTI instead: open
    # the window with its expiry if it is not open, count, and read the time left.
    hits_key = backend.make_and_validate_key(_keys(key)[0])
    client = backend._cache.get_client(hits_key, write=True)
    pipe = client.pipeline(transaction=True)
    pipe.set(hits_key, 0, ex=window, nx=True)
    pipe.incr(hits_key)
    pipe.pttl(hits_key)
    _, hits, left_ms = pipe.execute()
    return int(hits), max(0.0, left_ms / 1000) if left_ms > 0 else float(window)


def window_counts(keys: list[str]) -> dict[str, int]:
    """Hits in each key's open window (0 where none is open, or the cache is away), in one read."""
    found: dict[str, Any] = cache_call(
        "ratelimit-read", lambda: cache.get_many([_keys(k)[0] for k in keys]), {}
    )
    return {key: found.get(_keys(key)[0], 0) for key in keys}


def window_clear(key: str) -> None:
    cache_call("ratelimit-clear", lambda: cache.delete_many(list(_keys(key))), None)


def window_release(key: str) -> None:
    """Give back one hit counted by `window_hit` (a reserved attempt that turned out fine).

    If the window closed meanwhile there is nothing to give back. If a new one opened just then,
    its count loses one hit: at worst one extra attempt, never a lost lockout.
    """

    def release() -> None:
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            _redis_window_release(backend, key)
            return
        with contextlib.suppress(ValueError):
            cache.decr(_keys(key)[0])

    cache_call("ratelimit-release", release, None)


# DECR only a counter that exists, in one step: Django's decr is EXISTS then DECR, and a window
# closing in between would leave a -1 counter with no TTL (the same race as in incr above).
_RELEASE_SCRIPT = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end"
)


def _redis_window_release(backend: RedisCache, key: str) -> None:
    hits_key = backend.make_and_validate_key(_keys(key)[0])
    client = backend._cache.get_client(hits_key, write=True)
    client.eval(_RELEASE_SCRIPT, 1, hits_key)
