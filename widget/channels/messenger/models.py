"""The Messenger inbox (raw webhook events) and one row per person writing to a page.

Imported by `widget.models`, so the tables belong to app `widget`.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class InboxKind(models.TextChoices):
    TEXT = "text", "Text message"
    QUICK_REPLY = "quick_reply", "Quick reply"
    POSTBACK = "postback", "Postback"
    ATTACHMENT = "attachment", "Attachment"
    ECHO = "echo", "Echo (sent by the page)"
    DELIVERY = "delivery", "Delivery receipt"
    READ = "read", "Read receipt"
    UNKNOWN = "unknown", "Unknown"


class InboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


# An event of these statuses still has to be handled; a later event of the same person waits
# for it, so one person's messages are answered in the order they came.
INBOX_OPEN = (InboxStatus.PENDING, InboxStatus.PROCESSING)
# Handled for good: the retention sweep may delete these once they are old enough.
INBOX_HANDLED = (InboxStatus.DONE, InboxStatus.SKIPPED, InboxStatus.FAILED)


class MessengerContact(models.Model):
    """One person (page-scoped id, PSID) writing to one page, and their current session.

    Its row is locked while an event of theirs is stored, so two events of one person can never
    start two sessions. The PSID is Meta's id for the person on this page, never a lead field.
    """

    site = models.ForeignKey(
        "widget.Site", on_delete=models.CASCADE, related_name="messenger_contacts"
    )
    page_id = models.CharField(max_length=64)
    psid = models.CharField("PSID", max_length=64)
    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The person's last message: Meta allows automated replies for 24 hours after it.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page_id", "psid"], name="messenger_contact_unique")
        ]

    def __str__(self) -> str:
        return f"{self.psid} @ page {self.page_id}"


class MessengerInboxEvent(models.Model):
    """One event of Meta's webhook (`entry[].messaging[]`), stored raw as it came."""

    # Meta's message id (Meta retries a webhook it did not get a 200 for: one row per message).
    # Events without one (receipts, some postbacks) get `sha256:` of their content instead.
    mid = models.CharField(max_length=255, unique=True)
    page_id = models.CharField(max_length=64)
    # The person: the sender, or for an echo (sent by the page) the recipient.
    psid = models.CharField("PSID", max_length=64, blank=True, default="")
    kind = models.CharField(max_length=16, choices=InboxKind.choices)
    payload = models.JSONField()
    # Meta's `timestamp` of the event.
    event_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    site = models.ForeignKey(
        "widget.Site", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING
    )
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A claim, as the outbox's: a worker that dies leaves a lease that runs out.
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    claim_token = models.CharField(max_length=32, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)
    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Set in the transaction that stored the person's message: a worker that takes the event
    # over after a crash sees it and never stores the message twice.
    message = models.ForeignKey(
        "sessions_app.ChatMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="messenger_inbox_due",
            ),
            models.Index(
                fields=["lease_until"],
                condition=Q(status="processing"),
                name="messenger_inbox_leased",
            ),
            models.Index(
                fields=["page_id", "psid", "id"],
                condition=Q(status__in=["pending", "processing"]),
                name="messenger_inbox_open",
            ),
            # The worker's retention sweep: handled events by when they were handled.
            models.Index(
                fields=["processed_at"],
                condition=Q(status__in=["done", "skipped", "failed"]),
                name="messenger_inbox_handled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.mid} ({self.get_status_display()})"
