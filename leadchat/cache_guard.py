"""What the app does while the shared cache (Redis) is away.

The cache holds nothing that a lead depends on: rate-limit counters and a 30 s copy of the
active sites' origins. So a cache outage must never stop lead capture. Every cache call on the
visitor's path goes through `cache_call`: rate limits fail OPEN (the request is let through,
uncounted) and the origins are read from the database instead. Each failure is counted
(`leadchat_cache_errors_total` at /metrics) and logged as an ERROR, but at most once per
`LOG_EVERY` seconds per process: an outage would otherwise write one line per request.
`/health/ready` probes the cache itself and answers 503 while it is down.

Failing open is a trade: while Redis is down, the widget's and the sign-in's limits do not hold.
Refusing every visitor (fail closed) would turn a cache restart into lost leads, which is the one
thing leadchat promises never to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

from leadchat import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOG_EVERY = 60.0


def _cache_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        import redis

        errors.append(redis.RedisError)
    except ImportError:  # a deployment without Redis has only socket errors to fear
        pass
    return tuple(errors)


# Connection refused, timeouts, a server that answers garbage (e.g. LOADING after a restart).
# Not ValueError: Django raises it on `incr` of a missing key, which callers rely on.
CACHE_ERRORS = _cache_errors()

_lock = threading.Lock()
_last_logged = 0.0
_suppressed = 0


def cache_failed(operation: str, exc: BaseException) -> None:
    """Count and (throttled) log one failed cache call."""
    global _last_logged, _suppressed
    metrics.CACHE_ERRORS.labels(operation=operation).inc()
    now = time.monotonic()
    with _lock:
        if now - _last_logged < LOG_EVERY and _last_logged:
            _suppressed += 1
            return
        _last_logged, suppressed, _suppressed = now, _suppressed, 0
    logger.error(
        "Cache unavailable (%s: %s: %s); failing open: rate limits are not enforced and site "
        "origins are read from the database. %d more failure(s) since the last report.",
        operation,
        type(exc).__name__,
        exc,
        suppressed,
    )


def cache_call(operation: str, call: Callable[[], T], default: T) -> T:
    """`call()`, or `default` when the cache is unreachable (counted and logged)."""
    try:
        return call()
    except CACHE_ERRORS as exc:
        cache_failed(operation, exc)
        return default


PROBE_KEY = "health:cache-probe"


def cache_status() -> str:
    """`ok` when the cache keeps a write and answers a read, else `unavailable` (readiness)."""
    token = f"{time.time():.6f}"
    try:
        cache.set(PROBE_KEY, token, timeout=30)
        # Another process may have written its own probe in between: any value proves the
        # cache keeps writes; none means it does not.
        kept = cache.get(PROBE_KEY) is not None
    except CACHE_ERRORS as exc:
        cache_failed("probe", exc)
        return "unavailable"
    return "ok" if kept else "unavailable"
