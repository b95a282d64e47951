"""A bulkhead around agent backend calls: at most WIDGET_AGENT_MAX_CONCURRENT per process.

A hanging agent holds a gunicorn thread for the whole reply budget (up to 25 s). Without a
limit, 32 visitors on a hung n8n hold all 32 threads and /health, the dashboard and every other
site's visitors queue behind them. With it, the rest of the threads stay free; a visitor beyond
the limit gets the polite fallback at once (their message is already stored, so nothing is lost).

Turned-away calls are not automation errors (a hung agent would write one per message, burying
the one error that says what is wrong: the agent's own timeout). They are counted in
`leadchat_agent_bulkhead_rejected_total` at /metrics and logged at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from leadchat import metrics

logger = logging.getLogger(__name__)

LOG_EVERY = 60.0

_lock = threading.Lock()
_semaphore: threading.BoundedSemaphore | None = None
_size = 0
_last_logged = 0.0
_rejected_since_log = 0


def _slots() -> threading.BoundedSemaphore:
    global _semaphore, _size
    wanted = max(1, int(settings.WIDGET_AGENT_MAX_CONCURRENT))
    with _lock:
        # Rebuilt only if the setting changed (tests); calls holding the old one release it.
        if _semaphore is None or _size != wanted:
            _semaphore, _size = threading.BoundedSemaphore(wanted), wanted
        return _semaphore


@contextmanager
def agent_slot(*, backend: str, session_id: str, bounded: bool = True) -> Iterator[bool]:
    """Yields True with a slot held for the agent call, or False (at once) when all are busy.

    `bounded=False` (an in-process agent) always yields True and takes no slot.
    """
    if not bounded:
        yield True
        return
    slots = _slots()
    if not slots.acquire(blocking=False):
        _rejected(backend, session_id)
        yield False
        return
    try:
        yield True
    finally:
        slots.release()


def _rejected(backend: str, session_id: str) -> None:
    global _last_logged, _rejected_since_log
    metrics.AGENT_BULKHEAD_REJECTED.inc()
    now = time.monotonic()
    with _lock:
        _rejected_since_log += 1
        if _last_logged and now - _last_logged < LOG_EVERY:
            return
        _last_logged, count, _rejected_since_log = now, _rejected_since_log, 0
    logger.warning(
        "Agent bulkhead full: %d agent call(s) already running in this process "
        "(WIDGET_AGENT_MAX_CONCURRENT); session %s (%s) answered with the fallback. "
        "%d visitor message(s) turned away since the last report.",
        _size,
        session_id,
        backend,
        count,
    )
