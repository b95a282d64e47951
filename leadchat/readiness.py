"""Is leadchat able to keep its promises right now? One read for /health/ready and /metrics.

`/health` only says the process answers and the database does. An operator also needs to know
when leads are silently not reaching n8n: the cache is away, no delivery worker is alive, or the
outbox is backing up. `readiness_snapshot` gathers every figure in a few aggregate queries, and
both the readiness view and the Prometheus metrics are built from it, so they always agree.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from leadchat.cache_guard import cache_status

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        return "unavailable"
    return "ok"


@dataclass
class Readiness:
    database: str = "ok"
    cache: str = "ok"
    # Age of the newest worker heartbeat (None: no worker ever beat here).
    worker_heartbeat_age_seconds: float | None = None
    worker_last_beat_at: datetime | None = None
    # Rows not yet final (pending or sending), and those due now that a worker should be sending.
    queue_depth: int = 0
    due: int = 0
    oldest_due_age_seconds: float = 0.0
    # Claimed rows whose lease expired: their worker died or hung mid-send.
    stuck_sending: int = 0
    # Pending rows waiting for a disabled endpoint to be enabled again (kept, not lost).
    held_for_disabled_endpoints: int = 0
    disabled_endpoints: int = 0
    last_delivered_at: datetime | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict:
        data = asdict(self)
        for key in ("worker_last_beat_at", "last_delivered_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return {"status": "ok" if self.ready else "unavailable", **data}


def readiness_snapshot(*, now: datetime | None = None) -> Readiness:
    from sessions_app.delivery import worker_heartbeat_latest
    from sessions_app.models import Delivery, DeliveryKind, DeliveryStatus, WebhookEndpoint

    now = now or timezone.now()
    result = Readiness(database=database_status(), cache=cache_status())
    if result.cache != "ok":
        result.reasons.append("cache unreachable: rate limits are not enforced")
    if result.database != "ok":
        result.reasons.append("database unreachable")
        return result

    try:
        beat = worker_heartbeat_latest()
        deliverable = Q(kind=DeliveryKind.EMAIL) | Q(endpoint__is_active=True)
        pending = Q(status=DeliveryStatus.PENDING)
        due = pending & Q(next_attempt_at__lte=now) & deliverable
        figures = Delivery.objects.aggregate(
            queue_depth=Count(
                "id", filter=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
            ),
            due=Count("id", filter=due),
            oldest_due=Min("next_attempt_at", filter=due),
            stuck_sending=Count("id", filter=Q(status=DeliveryStatus.SENDING, lease_until__lt=now)),
            held=Count("id", filter=pending & ~deliverable),
            last_delivered_at=Max("delivered_at"),
        )
        result.disabled_endpoints = WebhookEndpoint.objects.filter(is_active=False).count()
    except DatabaseError:
        result.database = "unavailable"
        result.reasons.append("database unreachable")
        return result

    result.queue_depth = figures["queue_depth"]
    result.due = figures["due"]
    result.stuck_sending = figures["stuck_sending"]
    result.held_for_disabled_endpoints = figures["held"]
    result.last_delivered_at = figures["last_delivered_at"]
    if figures["oldest_due"] is not None:
        result.oldest_due_age_seconds = max(0.0, (now - figures["oldest_due"]).total_seconds())

    max_beat_age = settings.READINESS_WORKER_MAX_AGE_SECONDS
    if beat is None:
        result.reasons.append("no delivery worker has ever run (manage.py deliver_webhooks)")
    else:
        result.worker_last_beat_at = beat.beat_at
        result.worker_heartbeat_age_seconds = max(0.0, (now - beat.beat_at).total_seconds())
        if result.worker_heartbeat_age_seconds > max_beat_age:
            result.reasons.append(
                f"delivery worker silent for {int(result.worker_heartbeat_age_seconds)} s "
                f"(limit {max_beat_age} s)"
            )
    max_due_age = settings.READINESS_MAX_DUE_AGE_SECONDS
    if result.oldest_due_age_seconds > max_due_age:
        result.reasons.append(
            f"oldest due delivery waiting {int(result.oldest_due_age_seconds)} s "
            f"(limit {max_due_age} s)"
        )
    return result
