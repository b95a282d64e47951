"""Delivery models: webhook endpoints, the outbox rows, their attempts, worker heartbeats.

They live in app `sessions_app` (imported by `sessions_app.models`), so their tables, names and
migrations are the ones they always had; only the module moved.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions_app.delivery.webhook_secrets import generate_webhook_secret, is_valid_webhook_secret

# --- Outbox: lead webhooks and QA emails ------------------------------------------------------
# Written in the same transaction as the change that causes them (STYLE.md: transactional
# outbox), sent later by `manage.py deliver_webhooks` (sessions_app.delivery.worker).


def validate_webhook_secret(value: str) -> None:
    if not is_valid_webhook_secret(value):
        raise ValidationError(
            "Use a Standard Webhooks secret: whsec_ followed by base64 of at least 24 random "
            "bytes (leave the generated one unless the receiver gave you its own)."
        )


class WebhookEvent(models.TextChoices):
    LEAD_CAPTURED = "lead.captured", "Lead captured"
    TEST = "webhook.test", "Test event"


class WebhookEndpoint(models.Model):
    """Where lead webhooks go: an n8n Webhook node, per site or for every site."""

    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    secret = models.CharField(
        max_length=200,
        default=generate_webhook_secret,
        validators=[validate_webhook_secret],
        help_text="Standard Webhooks signing secret (whsec_...). The receiver verifies with it.",
    )
    auth_header_name = models.CharField(
        max_length=100, blank=True, default="", help_text="Optional, for n8n's Header Auth."
    )
    auth_header_value = models.CharField(max_length=500, blank=True, default="")
    site = models.ForeignKey(
        "widget.Site",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        help_text="Empty: every site's leads.",
    )
    events = models.JSONField(
        default=list,
        blank=True,
        help_text='Event types sent here, e.g. ["lead.captured"]. Empty: every event.',
    )
    # The endpoint configured by LEAD_WEBHOOK_URL is mirrored into one row with this flag, so
    # its deliveries, attempts and last success show in the admin like any other endpoint.
    from_settings = models.BooleanField(default=False, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_reason = models.CharField(max_length=500, blank=True, default="")
    # Start of the current run of failures (cleared by a success): an endpoint failing for
    # WEBHOOK_DISABLE_AFTER_FAILING_DAYS is switched off and the admins are emailed.
    failing_since = models.DateTimeField(null=True, blank=True)
    # The secret before the last rotation: sends are signed with both until the overlap
    # window (WEBHOOK_SECRET_OVERLAP_HOURS) ends, so a receiver can switch at its own pace.
    previous_secret = models.CharField(max_length=200, blank=True, default="", editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_settings"],
                condition=Q(from_settings=True),
                name="webhook_endpoint_one_from_settings",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def clean(self) -> None:
        # An early, clear refusal of a receiver the worker may never reach (metadata, link-local,
        # private without OUTBOUND_ALLOW_PRIVATE_NETWORKS); the check at connect time stays the
        # one that counts (DNS may change).
        from leadchat.outbound import url_problem

        problem = url_problem(self.url) if self.url else None
        if problem:
            raise ValidationError({"url": f"This URL {problem}."})


class DeliveryKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "Email"
    # A reply to a Facebook Messenger conversation (sent by widget.channels.messenger's sender).
    MESSENGER = "messenger", "Messenger reply"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Allowed moves of a delivery (the outbox checks them). `sending` is a claim with a lease; a
# claim whose lease expired goes back to `sending` under a new worker (reclaim).
DELIVERY_MOVES: dict[str, set[str]] = {
    DeliveryStatus.PENDING: {DeliveryStatus.SENDING, DeliveryStatus.CANCELLED},
    DeliveryStatus.SENDING: {
        DeliveryStatus.SENDING,
        DeliveryStatus.PENDING,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELLED,
    },
    DeliveryStatus.DELIVERED: {DeliveryStatus.PENDING},  # redeliver
    DeliveryStatus.FAILED: {DeliveryStatus.PENDING},  # redeliver
    DeliveryStatus.CANCELLED: {DeliveryStatus.PENDING},  # redeliver
}


class Delivery(models.Model):
    """One event for one endpoint (or one email), with its frozen payload and retry state."""

    # Stable across retries and redeliveries: the `webhook-id` receivers deduplicate on, and the
    # Idempotency-Key of an email.
    event_id = models.CharField(max_length=64, db_index=True)
    event_type = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=DeliveryKind.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        help_text="Deactivate an endpoint instead of deleting it: its log stays.",
    )
    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    # The person the payload is about, so an erasure finds the row even without its session.
    subject_email = models.EmailField(max_length=254, blank=True, default="", db_index=True)
    # Webhooks: the JSON body. Emails: {"to", "subject", "text", "html"}. Never rebuilt: a retry
    # sends what the event said when it happened.
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Sends started (each has an attempt row, written before the request goes out).
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # The retry clock: steps of WEBHOOK_RETRY_SCHEDULE used, and when the first try of this
    # round was made. A Retry-After the receiver asks for uses no step; the round ends when the
    # schedule is used up or its total span has passed. A redelivery starts a new round.
    schedule_step = models.PositiveSmallIntegerField(default=0)
    window_started_at = models.DateTimeField(null=True, blank=True)
    # Sends that ended on our side without an outcome (the worker was killed mid-send, or the
    # row raised): after DELIVERY_MAX_CRASHES in a row the row fails instead of killing more
    # workers. Reset by any outcome from the receiver.
    crashes = models.PositiveSmallIntegerField(default=0)
    # A claim: the worker that holds `sending` rows, and until when. A worker that dies leaves a
    # lease that expires; another worker then claims the row again.
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A redelivery asked by a person: copied onto the next attempt row, then cleared.
    redelivery_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    redelivery_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # One row per event and endpoint: a re-sent signal cannot queue a lead twice.
            models.UniqueConstraint(
                fields=["event_id", "endpoint"],
                condition=Q(endpoint__isnull=False),
                name="delivery_unique_event_endpoint",
            ),
            models.UniqueConstraint(
                fields=["event_id"],
                condition=Q(endpoint__isnull=True),
                name="delivery_unique_event_without_endpoint",
            ),
        ]
        indexes = [
            # The worker's claim: due pending rows, and sending rows whose lease expired.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due",
            ),
            models.Index(
                fields=["lease_until"],
                condition=Q(status="sending"),
                name="delivery_leased",
            ),
            models.Index(fields=["status", "-created_at"], name="delivery_status_created"),
            models.Index(fields=["event_type", "-created_at"], name="delivery_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.get_status_display()})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: the log behind the admin's delivery page."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # First 4 KB of what the receiver answered: enough to debug, bounded in size.
    response_body = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=100, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Empty while the request is on the wire. The row is written before the send, so a send
    # cut short by `kill -9` still shows in the log (marked interrupted by the next worker).
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [
            models.Index(fields=["delivery", "-attempted_at"], name="attempt_delivery_time"),
        ]

    def __str__(self) -> str:
        outcome = self.status_code or self.error[:40] or "?"
        return f"attempt {self.number}: {outcome}"


class WorkerHeartbeat(models.Model):
    """The last sign of life of each delivery worker, for /health/ready and /metrics.

    In the database, not the cache: the web process that answers the probe must see the beat of
    a worker running elsewhere (another container, the locmem cache of another process).
    Written by `sessions_app.delivery.heartbeat.worker_heartbeat_beat`, one row per worker name.
    """

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()
    started_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    # Rows the worker processed since it started (as of its last beat).
    processed = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
