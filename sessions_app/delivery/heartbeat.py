"""Delivery workers' heartbeats, kept in the database.

A worker that hangs, crash-loops or was never started leaves leads in the outbox with nothing
to say so: `/health/ready` and `/metrics` (leadchat.readiness) read the newest beat, and answer
503 when it is older than WORKER_HEARTBEAT_MAX_AGE_SECONDS. The beat is written from the
worker's loop (not from a thread of its own), so a loop stuck on one send stops beating too.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime

from django.utils import timezone

from sessions_app.models import WorkerHeartbeat

# Often enough that a 2-minute staleness limit never flaps, rare enough to cost nothing.
BEAT_EVERY_SECONDS = 15.0

_started: dict[str, datetime] = {}
_next_beat: dict[str, float] = {}
_lock = threading.Lock()


def worker_heartbeat_beat(
    *, name: str, now: datetime | None = None, processed: int | None = None
) -> WorkerHeartbeat:
    """Record that worker `name` is alive now (one row per name, updated in place)."""
    now = now or timezone.now()
    with _lock:
        started = _started.setdefault(name, now)
    defaults: dict = {"beat_at": now, "host": socket.gethostname()[:255], "pid": os.getpid()}
    if processed is not None:
        defaults["processed"] = processed
    beat, _ = WorkerHeartbeat.objects.update_or_create(
        name=name[:100], defaults=defaults, create_defaults={**defaults, "started_at": started}
    )
    return beat


def worker_heartbeat_tick(*, name: str, processed: int | None = None) -> None:
    """`worker_heartbeat_beat`, at most every BEAT_EVERY_SECONDS per worker (the loop's call)."""
    now = time.monotonic()
    with _lock:
        if now < _next_beat.get(name, 0.0):
            return
        _next_beat[name] = now + BEAT_EVERY_SECONDS
    worker_heartbeat_beat(name=name, processed=processed)


def worker_heartbeat_latest() -> WorkerHeartbeat | None:
    """The most recent beat of any worker (None when no worker ever ran here)."""
    return WorkerHeartbeat.objects.order_by("-beat_at").first()


def worker_heartbeats(*, limit: int = 20) -> list[WorkerHeartbeat]:
    return list(WorkerHeartbeat.objects.order_by("-beat_at")[:limit])
