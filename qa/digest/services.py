"""Queueing the daily QA digest: at most one per UTC day, however many workers run.

The email goes through the outbox (`email_enqueue`), so the worker sends it through Resend with
its retries and its Idempotency-Key like every other QA email. Today's `QADigest` row is
inserted in the same transaction as the outbox row: its unique day is the idempotency key of
the digest itself. Two workers that pass QA_DIGEST_HOUR at the same moment both build the
digest, both try to insert the day's row, and the second insert fails (on PostgreSQL it waits for
the first transaction and then fails), rolling its outbox row back with it: one email.

The worker job (`digest_job_run`, registered in QaConfig.ready()) checks on every pass of the
worker loop but costs nothing before the hour and nothing once today's digest is known to be
queued (a per-process note of the day); between the two, one indexed SELECT per pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from qa.digest.models import QADigest
from qa.digest.selectors import OLD_ISSUE_DAYS, Digest, qa_digest
from sessions_app.delivery.outbox import email_enqueue
from sessions_app.errors import DomainError

logger = logging.getLogger(__name__)

JOB_NAME = "qa-digest"
DIGEST_EMAIL_EVENT = "qa.digest"


class DigestNoRecipients(DomainError):
    """QA_NOTIFY_EMAILS is empty: there is nobody to send the digest to."""


class DigestAlreadyQueued(DomainError):
    """Today's digest was queued already (by a worker or the command)."""


NO_RECIPIENTS_MESSAGE = (
    "QA_NOTIFY_EMAILS is empty: no QA digest queued (set QA_NOTIFY_EMAILS, comma separated)."
)


def digest_day(now: datetime) -> date:
    """The UTC day a digest at `now` is for (QA_DIGEST_HOUR is a UTC hour)."""
    return now.astimezone(UTC).date()


def digest_recipients() -> list[str]:
    seen: set[str] = set()
    recipients = []
    for address in settings.QA_NOTIFY_EMAILS:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            recipients.append(address.strip())
    return recipients


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


def digest_render(digest: Digest) -> RenderedDigest:
    context = {"digest": digest, "old_issue_days": OLD_ISSUE_DAYS}
    return RenderedDigest(
        subject=digest.subject,
        text=render_to_string("emails/qa_digest.txt", context),
        html=render_to_string("emails/qa_digest.html", context),
    )


def qa_digest_queue(*, now: datetime | None = None, queued_by: str = "worker") -> QADigest:
    """Queue today's digest to QA_NOTIFY_EMAILS. Raises DigestNoRecipients when the list is
    empty (nothing is written) and DigestAlreadyQueued when today's was queued before."""
    now = now or timezone.now()
    recipients = digest_recipients()
    if not recipients:
        raise DigestNoRecipients(NO_RECIPIENTS_MESSAGE)
    day = digest_day(now)
    existing = QADigest.objects.filter(day=day).first()
    if existing is not None:
        raise DigestAlreadyQueued(_already_message(existing))
    rendered = digest_render(qa_digest(now=now))
    try:
        with transaction.atomic():
            delivery = email_enqueue(
                event_type=DIGEST_EMAIL_EVENT,
                to=recipients,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
            )
            return QADigest.objects.create(
                day=day,
                queued_at=now,
                delivery=delivery,
                recipients=recipients,
                queued_by=queued_by,
            )
    except IntegrityError:
        # Another worker (or the command) inserted today's row between our check and our insert:
        # its email is the one; ours was rolled back with this transaction.
        existing = QADigest.objects.filter(day=day).first()
        raise DigestAlreadyQueued(
            _already_message(existing) if existing else f"The digest of {day} is being queued."
        ) from None


def _already_message(row: QADigest) -> str:
    at = timezone.localtime(row.queued_at)
    return (
        f"The QA digest of {row.day} was already queued at {at:%H:%M %Z} (by the {row.queued_by})."
    )


def qa_digest_due(*, now: datetime | None = None) -> QADigest | None:
    """Queue today's digest if its hour has come and it was not queued yet; None otherwise.

    The schedule, on the caller's clock: nothing before QA_DIGEST_HOUR (UTC), once at the first
    call on or after it, nothing again that day.
    """
    now = now or timezone.now()
    if not _hour_reached(now):
        return None
    if QADigest.objects.filter(day=digest_day(now)).exists():
        return None
    try:
        return qa_digest_queue(now=now, queued_by="worker")
    except DigestAlreadyQueued:
        return None


def _hour_reached(now: datetime) -> bool:
    hour = settings.QA_DIGEST_HOUR
    return hour is not None and now.astimezone(UTC).hour >= hour


# The UTC day this process last found settled (queued, by anyone, or nobody to send to): no
# query until the next day.
_settled_day: date | None = None


def digest_job_run(worker: str, limit: int) -> int:
    """The worker job: 1 when this pass queued today's digest, else 0."""
    global _settled_day
    now = timezone.now()
    day = digest_day(now)
    if _settled_day == day:
        return 0
    try:
        queued = qa_digest_due(now=now)
    except DigestNoRecipients:
        logger.warning("%s", NO_RECIPIENTS_MESSAGE)
        _settled_day = day
        return 0
    if queued is not None:
        logger.info("QA digest of %s queued to %s.", queued.day, ", ".join(queued.recipients))
        _settled_day = day
        return 1
    if _hour_reached(now):
        _settled_day = day  # queued before, by another worker or the command
    return 0
