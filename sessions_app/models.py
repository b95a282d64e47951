import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Channel(models.TextChoices):
    WEB = "web", "Web widget"
    MESSENGER = "messenger", "Messenger"
    API = "api", "API"
    # Channels whose AI agent runs in n8n; their transcripts arrive through the ingest API.
    WHATSAPP = "whatsapp", "WhatsApp"
    INSTAGRAM = "instagram", "Instagram"
    TELEGRAM = "telegram", "Telegram"


class CompletionStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETE = "complete", "Complete"
    INCOMPLETE = "incomplete", "Incomplete"


class ArchiveStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class TrashStatus(models.TextChoices):
    """Whether a session is in the trash (it is while `deleted_at` is set), as history names it."""

    LIVE = "live", "Not in the trash"
    TRASHED = "trashed", "In the trash"


class HumanRequestStatus(models.TextChoices):
    """Whether the visitor is waiting for a person, as the history names it (`needs_human`)."""

    NONE = "none", "No request"
    REQUESTED = "requested", "Needs a human"


class HoldStatus(models.TextChoices):
    """Who answers a session, as its history names a takeover or hand back."""

    AI = "ai", "AI agent"
    AGENT = "agent", "Human agent"


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


class EmailQuality(models.TextChoices):
    """What `sessions_app.email_quality` found about a lead's email (blank: no email checked)."""

    VALID = "valid", "Valid"
    NO_MX = "no_mx", "No mail server"
    DISPOSABLE = "disposable", "Disposable"
    ROLE = "role", "Role address"
    UNVERIFIABLE = "unverifiable", "Unverifiable"


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


class ChatSessionQuerySet(models.QuerySet["ChatSession"]):
    def not_deleted(self) -> "ChatSessionQuerySet":
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> "ChatSessionQuerySet":
        return self.filter(deleted_at__isnull=False)

    def visible(self) -> "ChatSessionQuerySet":
        """What default lists show: not deleted and not archived."""
        return self.filter(deleted_at__isnull=True, archive_status=ArchiveStatus.ACTIVE)


# The "who did it" columns (archived_by, deleted_by, held_by, qa_status_by, qa_notes_by,
# dev_feedback_by) have no index: nothing filters sessions by them, and a user is deleted rarely
# (Django's SET NULL then scans the table once per column), while every new session and every
# non-HOT update would write into six more indexes.


class ChatSession(models.Model):
    """One conversation between a visitor and the AI agent (the old `messenger_sessions`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: session_site_started (site, -started_at) answers every site_id lookup.
    site = models.ForeignKey(
        "widget.Site",
        on_delete=models.PROTECT,
        related_name="sessions",
        null=True,
        blank=True,
        db_index=False,
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)
    # The conversation's id on its channel (a chat id, a phone number, n8n's session id...) for
    # a conversation that lives elsewhere; empty for the widget's own. Unique per channel, so
    # two requests that see a new conversation at once start one session. A database default
    # too, so rows written by raw SQL or COPY (bench/seed.py) need not list it.
    external_id = models.CharField(max_length=255, blank=True, default="", db_default="")
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
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )

    lead_name = models.CharField(max_length=200, blank=True, default="")
    lead_email = models.EmailField(max_length=254, blank=True, default="")
    lead_phone = models.CharField(max_length=50, blank=True, default="")
    lead_data = models.JSONField(default=dict, blank=True)
    lead_captured_at = models.DateTimeField(null=True, blank=True)
    # Who the lead is, across sessions: the SHA-256 of the normalised, lower-cased email
    # (sessions_app.leads.lead_key), set by lead_capture with the email; empty without one. The
    # Leads page groups on it and names a person by it in URLs, so no email lands in an address
    # bar, a proxy log or a Referer. A database default too, so raw SQL and COPY rows need not
    # list it.
    lead_key = models.CharField(
        max_length=64, blank=True, default="", db_default="", editable=False
    )
    # Lead quality (sessions_app.email_quality): set with the email, by `lead_capture`.
    email_quality = models.CharField(
        max_length=16, choices=EmailQuality.choices, blank=True, default="", db_default=""
    )
    # The privacy line the visitor was shown before leaving the email, word for word (GDPR:
    # what they agreed to, even after the site changes its wording).
    lead_consent_text = models.TextField(blank=True, default="", db_default="")
    # Why there is no lead although the visitor was asked (the scripted agent's decline rule).
    lead_declined_reason = models.CharField(max_length=200, blank=True, default="", db_default="")

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

    # The visitor asked for a person (widget.services through `human_request`), until an agent
    # takes over or dismisses it (`human_request_clear`). `human_notified_at`: when the site's
    # notify list was emailed about this request (once per request, by the worker's job).
    needs_human = models.BooleanField(default=False, db_default=False)
    human_requested_at = models.DateTimeField(null=True, blank=True)
    human_notified_at = models.DateTimeField(null=True, blank=True)
    # The agent who took the session over from the AI (sessions_app.takeover): while set, the AI
    # does not answer and only this agent may write to the visitor.
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )
    held_at = models.DateTimeField(null=True, blank=True)

    qa_status = models.CharField(
        max_length=16, choices=QAStatus.choices, default=QAStatus.UNCHECKED
    )
    qa_status_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )
    qa_status_at = models.DateTimeField(null=True, blank=True)
    qa_notes = models.TextField(blank=True, default="")
    qa_notes_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )
    qa_notes_at = models.DateTimeField(null=True, blank=True)
    dev_feedback = models.TextField(blank=True, default="")
    dev_feedback_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # nothing filters by it (see above the class)
    )
    dev_feedback_at = models.DateTimeField(null=True, blank=True)

    objects = ChatSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=~Q(external_id=""),
                name="session_unique_external_id",
            )
        ]
        permissions = [
            ("review_chatsession", "Can pass sessions and flag QA issues"),
            ("fix_chatsession", "Can write developer feedback and mark QA issues fixed"),
            ("archive_chatsession", "Can archive, delete and restore sessions"),
            ("export_chatsession", "Can export sessions"),
            ("reply_chatsession", "Can take sessions over from the AI and reply to visitors"),
        ]
        indexes = [
            # Default lists: visible sessions, newest first.
            models.Index(
                fields=["archive_status", "-started_at"],
                condition=Q(deleted_at__isnull=True),
                name="session_visible_started",
            ),
            # The default list with waiting visitors first (sessions_filter's order).
            models.Index(
                "archive_status",
                models.F("needs_human").desc(),
                models.F("started_at").desc(),
                models.F("id").desc(),
                condition=Q(deleted_at__isnull=True),
                name="session_visible_human_first",
            ),
            # The handoff email job: open requests by age (a handful of rows at any time).
            models.Index(
                fields=["human_requested_at"],
                condition=Q(needs_human=True),
                name="session_human_waiting",
            ),
            models.Index(fields=["-started_at", "-id"], name="session_started"),
            models.Index(fields=["qa_status", "-started_at"], name="session_qa_started"),
            models.Index(fields=["completion_status", "-started_at"], name="session_compl_started"),
            models.Index(fields=["site", "-started_at"], name="session_site_started"),
            models.Index(fields=["channel", "-started_at"], name="session_channel_started"),
            models.Index(fields=["updated_at"], name="session_updated"),
            # No btree on lead_email: its lookups are case-insensitive (erasure's iexact, the
            # search's icontains), which the trigram index on UPPER(lead_email) answers.
            # The Leads page (sessions_app/leads_selectors.py): a person's sessions newest first
            # (their latest name and statuses, their page), and GROUP BY lead_key answered by
            # an index-only scan: the trailing columns are what the groups aggregate and the
            # page's default filter reads. Only sessions that make up people are indexed.
            models.Index(
                fields=[
                    "lead_key",
                    "-started_at",
                    "-id",
                    "last_activity_at",
                    "lead_captured_at",
                    "archive_status",
                ],
                condition=~Q(lead_key="") & Q(deleted_at__isnull=True),
                name="session_lead_key",
            ),
            # Leads per day in the stats: only sessions with a lead are indexed.
            models.Index(
                fields=["lead_captured_at"],
                name="session_lead_captured",
                condition=models.Q(lead_captured_at__isnull=False),
            ),
            models.Index(fields=["deleted_at"], name="session_deleted"),
            # close_idle_sessions needs no index of its own: session_compl_started answers its
            # `completion_status = 'in_progress'` (the leading column; few rows at any time) and
            # it reads their last activity from the rows (EXPLAIN in bench/results.md). An index
            # on last_activity_at (as on any column a message writes) rules out HOT updates and
            # makes every message write into every index of the table.
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

    @property
    def utm(self) -> dict[str, str]:
        """The campaign fields as every JSON payload names them (`source`, not `utm_source`):
        the lead webhook's `data.session.utm` and the n8n agent's `metadata.utm` alike."""
        return {
            "source": self.utm_source,
            "medium": self.utm_medium,
            "campaign": self.utm_campaign,
            "term": self.utm_term,
            "content": self.utm_content,
        }


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
    # The message's id on its channel (ingest's `message_id`): a replayed message is stored once.
    external_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    # The agent version that wrote an AI message (widget.backends.version): its backend, model
    # and a hash of its prompt and config. Empty for other roles and for AI messages reported by
    # the ingest API (their agent is not ours to name). Columns, not metadata, so QA's figures
    # per agent version group by them. Database defaults too, for rows written by raw SQL.
    agent_backend = models.CharField(max_length=32, blank=True, default="", db_default="")
    agent_model = models.CharField(max_length=200, blank=True, default="", db_default="")
    agent_config_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    # Who wrote an `agent` message from the dashboard or the staff API (empty for an agent who
    # answered elsewhere, e.g. in Meta's inbox, and once the user is deleted).
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "external_id"],
                condition=~Q(external_id=""),
                name="message_unique_external_id",
            )
        ]
        indexes = [models.Index(fields=["session", "created_at", "id"], name="message_transcript")]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"


class LifecycleHistory(models.Model):
    """One lifecycle move of a session: archived or unarchived, moved to the trash or restored.

    Written only by `sessions_app.services`, in the transaction that makes the move, so the history
    can never disagree with the session. The session keeps who archived or trashed it only while
    it is so; these rows keep every move and who made it. QA moves have their own history
    (`qa.QAHistory`); `sessions_app.history` shows both as one.
    """

    class Kind(models.TextChoices):
        ARCHIVE = "archive", "Archive status"
        TRASH = "trash", "Trash"
        HUMAN = "human", "Request for a human"
        TAKEOVER = "takeover", "Who answers"

    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        related_name="lifecycle_history",
        # lifecycle_history_session_at below starts with session: a second index would only
        # cost writes.
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # An ArchiveStatus for `archive`, a TrashStatus for `trash`, a HumanRequestStatus for `human`,
    # a HoldStatus for `takeover`.
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "lifecycle history entry"
        verbose_name_plural = "lifecycle history"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["session", "-at", "-id"], name="lifecycle_history_session_at")
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_status} -> {self.to_status}"


class AutomationError(models.Model):
    """A failure in an automation: n8n's error workflow, an agent backend, a webhook delivery."""

    class Source(models.TextChoices):
        N8N = "n8n", "n8n workflow"
        AGENT = "agent", "Agent backend"
        WEBHOOK = "webhook", "Webhook delivery"
        EMAIL = "email", "Email"
        MESSENGER = "messenger", "Facebook Messenger"

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


class WidgetOpening(models.Model):
    """How many times visitors without a conversation opened a site's chat, per hour.

    Opening the chat creates no session (only the visitor's first message does), so this
    counter is what the overview's funnel (opened -> engaged -> lead) starts from. One row per
    site and hour rather than per day: the overview sums whole days in the viewer's time zone,
    and hour rows add up exactly to any whole-hour zone's days (a UTC day would not). Written
    only by `sessions_app.services.widget_opening_count` (an upsert: one statement, no lost
    counts when two visitors open at once).
    """

    site = models.ForeignKey("widget.Site", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="The start of the hour (UTC) the openings fell in.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "hour"], name="widget_opening_site_hour")
        ]

    def __str__(self) -> str:
        return f"site {self.site_id} at {self.hour:%Y-%m-%d %H}:00: {self.count}"


# The delivery models (the outbox) have their own module in the delivery subpackage; imported
# here so the app registry finds them in app `sessions_app`, tables and migrations unchanged.
# The migrations name the secret's default and validator by their path here.
from sessions_app.delivery.models import (  # noqa: E402, F401
    DELIVERY_MOVES,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WorkerHeartbeat,
    generate_webhook_secret,
    validate_webhook_secret,
)

# The stats rollups (kept by triggers on chatsession): their own module, app `sessions_app`.
from sessions_app.rollups import SessionRollup  # noqa: E402, F401
