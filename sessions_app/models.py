import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from sessions_app.webhook_secrets import generate_webhook_secret, is_valid_webhook_secret


class Channel(models.TextChoices):
    WEB = "web", "Web widget"
    MESSENGER = "messenger", "Messenger"
    API = "api", "API"


class CompletionStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETE = "complete", "Complete"
    INCOMPLETE = "incomplete", "Incomplete"


class ArchiveStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class QAStatus(models.TextChoices):
    UNCHECKED = "unchecked", "Unchecked"
    PASSED = "passed", "Passed"
    ISSUE = "issue", "Issue"
    FIXED = "fixed", "Fixed"


class DeliveryState(models.TextChoices):
    """Where the lead webhook of a session stands (mirrors its outbox rows)."""

    NONE = "none", "No lead yet"
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    # Every endpoint it waits for is switched off (a 410, an admin, days of failures): the
    # lead is held in the outbox and goes out once an endpoint is enabled again.
    PAUSED = "paused", "Paused (endpoint off)"
    DISABLED = "disabled", "No endpoint"


# Allowed moves, next to the model they govern. Services check these; nothing else changes a
# status. A returning visitor reopens an incomplete session; `complete` is final.
COMPLETION_MOVES: dict[str, set[str]] = {
    CompletionStatus.IN_PROGRESS: {CompletionStatus.COMPLETE, CompletionStatus.INCOMPLETE},
    CompletionStatus.INCOMPLETE: {CompletionStatus.IN_PROGRESS, CompletionStatus.COMPLETE},
    CompletionStatus.COMPLETE: set(),
}
ARCHIVE_MOVES: dict[str, set[str]] = {
    ArchiveStatus.ACTIVE: {ArchiveStatus.ARCHIVED},
    ArchiveStatus.ARCHIVED: {ArchiveStatus.ACTIVE},
}
QA_MOVES: dict[str, set[str]] = {
    QAStatus.UNCHECKED: {QAStatus.PASSED, QAStatus.ISSUE},
    QAStatus.ISSUE: {QAStatus.FIXED},
    QAStatus.FIXED: {QAStatus.PASSED, QAStatus.ISSUE},
    QAStatus.PASSED: {QAStatus.ISSUE},
}


class ChatSessionQuerySet(models.QuerySet):
    def not_deleted(self) -> "ChatSessionQuerySet":
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> "ChatSessionQuerySet":
        return self.filter(deleted_at__isnull=False)

    def visible(self) -> "ChatSessionQuerySet":
        """What default lists show: not deleted and not archived."""
        return self.filter(deleted_at__isnull=True, archive_status=ArchiveStatus.ACTIVE)


class ChatSession(models.Model):
    """One conversation between a visitor and the AI agent (the old `messenger_sessions`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    site = models.ForeignKey(
        "widget.Site", on_delete=models.PROTECT, related_name="sessions", null=True, blank=True
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)
    # SHA-256 of the visitor token: a leaked database does not let anyone resume a conversation.
    visitor_token_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    page_url = models.URLField(max_length=2000, blank=True, default="")
    referrer = models.URLField(max_length=2000, blank=True, default="")
    utm_source = models.CharField(max_length=200, blank=True, default="")
    utm_medium = models.CharField(max_length=200, blank=True, default="")
    utm_campaign = models.CharField(max_length=200, blank=True, default="")
    utm_term = models.CharField(max_length=200, blank=True, default="")
    utm_content = models.CharField(max_length=200, blank=True, default="")
    user_agent = models.CharField(max_length=500, blank=True, default="")

    started_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every service that changes the row: the dashboard's changes feed reads it.
    updated_at = models.DateTimeField(default=timezone.now)

    completion_status = models.CharField(
        max_length=16, choices=CompletionStatus.choices, default=CompletionStatus.IN_PROGRESS
    )
    archive_status = models.CharField(
        max_length=16, choices=ArchiveStatus.choices, default=ArchiveStatus.ACTIVE
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    lead_name = models.CharField(max_length=200, blank=True, default="")
    lead_email = models.EmailField(max_length=254, blank=True, default="")
    lead_phone = models.CharField(max_length=50, blank=True, default="")
    lead_data = models.JSONField(default=dict, blank=True)
    lead_captured_at = models.DateTimeField(null=True, blank=True)

    ai_engaged = models.BooleanField(default=False)
    message_count = models.PositiveIntegerField(default=0)
    # Count and sum of the AI replies' `latency_ms`, kept by `message_add`: the stats average the
    # latency over one row per session instead of reading every message's metadata.
    ai_replies_timed = models.PositiveIntegerField(default=0, editable=False)
    ai_latency_ms_total = models.FloatField(default=0, editable=False)
    # What this conversation cost the AI backend, kept by widget.budget: its per-session budgets
    # and the stats' tokens and cost per lead read these instead of every message's metadata.
    # A database default too, so rows written by raw SQL or COPY (bench/seed.py) need not list
    # them.
    ai_calls = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    ai_tokens = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)
    delivery_state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.NONE
    )

    qa_status = models.CharField(
        max_length=16, choices=QAStatus.choices, default=QAStatus.UNCHECKED
    )
    qa_status_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    qa_status_at = models.DateTimeField(null=True, blank=True)
    qa_notes = models.TextField(blank=True, default="")
    qa_notes_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    qa_notes_at = models.DateTimeField(null=True, blank=True)
    dev_feedback = models.TextField(blank=True, default="")
    dev_feedback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dev_feedback_at = models.DateTimeField(null=True, blank=True)

    objects = ChatSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [
            ("review_chatsession", "Can pass sessions and flag QA issues"),
            ("fix_chatsession", "Can write developer feedback and mark QA issues fixed"),
            ("archive_chatsession", "Can archive, delete and restore sessions"),
            ("export_chatsession", "Can export sessions"),
        ]
        indexes = [
            # Default lists: visible sessions, newest first.
            models.Index(
                fields=["archive_status", "-started_at"],
                condition=Q(deleted_at__isnull=True),
                name="session_visible_started",
            ),
            models.Index(fields=["-started_at", "-id"], name="session_started"),
            models.Index(fields=["qa_status", "-started_at"], name="session_qa_started"),
            models.Index(fields=["completion_status", "-started_at"], name="session_compl_started"),
            models.Index(fields=["site", "-started_at"], name="session_site_started"),
            models.Index(fields=["channel", "-started_at"], name="session_channel_started"),
            models.Index(fields=["updated_at"], name="session_updated"),
            models.Index(fields=["lead_email"], name="session_lead_email"),
            # Leads per day in the stats: only sessions with a lead are indexed.
            models.Index(
                fields=["lead_captured_at"],
                name="session_lead_captured",
                condition=models.Q(lead_captured_at__isnull=False),
            ),
            models.Index(fields=["deleted_at"], name="session_deleted"),
            # close_idle_sessions: in-progress rows by last activity.
            models.Index(
                fields=["last_activity_at"],
                condition=Q(completion_status="in_progress"),
                name="session_idle_candidates",
            ),
        ]

    def __str__(self) -> str:
        who = self.lead_name or self.lead_email or "anonymous visitor"
        return f"{who} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def has_lead(self) -> bool:
        return self.completion_status == CompletionStatus.COMPLETE

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MessageRole(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    AI = "ai", "AI agent"
    AGENT = "agent", "Human agent"
    SYSTEM = "system", "System"


class ChatMessage(models.Model):
    """One message of a session's transcript (the old `chat_sessions_for_dashboard`)."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Backend, model, latency_ms, tokens... for AI messages.
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["session", "created_at", "id"], name="message_transcript")]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"


class AutomationError(models.Model):
    """A failure in an automation: n8n's error workflow, an agent backend, a webhook delivery."""

    class Source(models.TextChoices):
        N8N = "n8n", "n8n workflow"
        AGENT = "agent", "Agent backend"
        WEBHOOK = "webhook", "Webhook delivery"
        EMAIL = "email", "Email"

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.N8N)
    workflow = models.CharField(max_length=255, blank=True, default="")
    node = models.CharField(max_length=255, blank=True, default="")
    message = models.TextField()
    execution_id = models.CharField(max_length=255, blank=True, default="")
    execution_url = models.URLField(max_length=2000, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    session = models.ForeignKey(
        ChatSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="automation_errors",
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # n8n may replay its error workflow; one execution is stored once.
            models.UniqueConstraint(
                fields=["source", "execution_id"],
                condition=~Q(execution_id=""),
                name="automation_error_unique_execution",
            )
        ]
        indexes = [
            models.Index(fields=["resolved", "-created_at"], name="autoerror_resolved_created"),
            models.Index(fields=["workflow", "-created_at"], name="autoerror_workflow_created"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow or self.get_source_display()}: {self.message[:80]}"


# --- Outbox: lead webhooks and QA emails ------------------------------------------------------
# Written in the same transaction as the change that causes them (STYLE.md: transactional
# outbox), sent later by `manage.py deliver_webhooks` (sessions_app.worker).


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


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Allowed moves of a delivery (sessions_app.outbox checks them). `sending` is a claim with a
# lease; a claim whose lease expired goes back to `sending` under a new worker (reclaim).
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
        ChatSession,
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
    Written by `sessions_app.heartbeat.worker_heartbeat_beat`, one row per worker name.
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
