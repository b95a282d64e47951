"""One row per day a digest was queued: the idempotency row of the daily digest.

Imported by `qa.models`, so the table belongs to app `qa`. Written only by `qa.digest.services`,
in the transaction that queues the email, so "today's digest was queued" and the outbox row
commit together (or not at all).
"""

from django.db import models
from django.utils import timezone


class QADigest(models.Model):
    # The UTC day the digest covers. Unique: two workers passing the hour at the same moment
    # both try to insert today's row, and the second one's insert fails instead of its email
    # going out (the outbox row is written in the same transaction).
    day = models.DateField(unique=True)
    queued_at = models.DateTimeField(default=timezone.now)
    delivery = models.ForeignKey(
        "sessions_app.Delivery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Who it went to, as queued (QA_NOTIFY_EMAILS at the time).
    recipients = models.JSONField(default=list, blank=True)
    # "worker" or "command": which path queued it.
    queued_by = models.CharField(max_length=16, default="worker")

    class Meta:
        verbose_name = "QA digest"
        verbose_name_plural = "QA digests"
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"QA digest of {self.day}"
