"""Fixed-window hit counters in the cache, for rate limits.

A window opens with a key's first hit and lasts `window` seconds. Each hit is one atomic
`incr` (in a shared cache such as Redis, several processes count together without losing
hits), so the cost of a hit does not grow with the limit. DRF's own throttles keep a list of
every timestamp in the window instead and rewrite it on each request: with a generous limit
that list, and the time spent pickling it, grows with the traffic.
"""

from __future__ import annotations

import contextlib
import time

from django.core.cache import cache


def _keys(key: str) -> tuple[str, str]:
    return f"{key}:hits", f"{key}:start"


def window_hit(key: str, window: int) -> tuple[int, float]:
    """Count a hit on `key`; returns (hits in the current window, seconds until it closes)."""
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


def window_counts(keys: list[str]) -> dict[str, int]:
    """Hits in each key's open window (0 where none is open), in one cache read."""
    found = cache.get_many([_keys(key)[0] for key in keys])
    return {key: found.get(_keys(key)[0], 0) for key in keys}


def window_clear(key: str) -> None:
    cache.delete_many(list(_keys(key)))


def window_release(key: str) -> None:
    """Give back one hit counted by `window_hit` (a reserved attempt that turned out fine).

    If the window closed meanwhile there is nothing to give back. If a new one opened just then,
    its count loses one hit: at worst one extra attempt, never a lost lockout.
    """
    with contextlib.suppress(ValueError):
        cache.decr(_keys(key)[0])
