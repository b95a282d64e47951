"""The transactional outbox: every write to webhook deliveries and queued emails.

Rows are written inside the transaction of the change that causes them (a lead capture, a QA
issue), so they commit or roll back with it: a crash after the commit loses nothing, because the
worker (`sessions_app.delivery.worker`) finds the row in the database. The network is only
ever touched by the worker, outside any transaction.

A row's life in the worker: `deliveries_claim` takes a batch (status `sending`, a claim token
and a lease), `delivery_send_begin` renews the lease of ONE row and writes its attempt row just
before its request goes out, `delivery_record_attempt` records the outcome. Every step after the
claim is fenced by the claim token: a worker whose lease ran out and whose row another worker
took can neither send it (begin refuses) nor move it (record logs the outcome only). Because the
lease is renewed per row and outlasts a send's hard deadline (the `sessions_app.E001` check), no
row is ever on the wire from two workers at once, however long the batch takes.

A disabled endpoint is paused, not removed: leads keep getting rows for it, which wait (pending)
until it is enabled again (`webhook_endpoint_set_active`, the only place `is_active` changes).

Lock order, to keep the worker and the request paths free of deadlocks: delivery row, then
session row, then endpoint row. Request paths hold the session row and only insert deliveries.
"""

import logging
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, Model, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from sessions_app.delivery.registry import delivery_sender
from sessions_app.delivery.webhooks import SendResult, lead_payload, ping_payload
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import (
    DELIVERY_MOVES,
    AutomationError,
    ChatSession,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryState,
    DeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from sessions_app.services import (
    automation_error_record,
    session_delivery_state_set,
    sessions_delivery_state_set,
)
from sessions_app.transitions import MoveWording, check_move, claim, lock

ENDPOINT_DISABLED_EMAIL_EVENT = "endpoint.disabled"

logger = logging.getLogger(__name__)

QA_ISSUE_EMAIL_EVENT = "qa.issue_flagged"
QA_FIXED_EMAIL_EVENT = "qa.session_fixed"
# A Retry-After longer than this is treated as this (a receiver asking for a week is broken).
MAX_RETRY_AFTER_SECONDS = 24 * 3600
SETTINGS_ENDPOINT_UNSET = "LEAD_WEBHOOK_URL is not set."


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


# --- Endpoints --------------------------------------------------------------------------------


def endpoint_from_settings() -> WebhookEndpoint | None:
    """The row mirroring LEAD_WEBHOOK_URL (created, updated or switched off to match).

    Writes only when the settings changed, so the common call is one SELECT. The admin shows
    this row's URL, auth and (when set here) secret as managed by the environment, read-only:
    an edit there would be reverted on the next lead.
    """
    url = settings.LEAD_WEBHOOK_URL
    endpoint = WebhookEndpoint.objects.filter(from_settings=True).first()
    if not url:
        if endpoint and endpoint.is_active:
            webhook_endpoint_set_active(
                endpoint=endpoint, active=False, reason=SETTINGS_ENDPOINT_UNSET
            )
        return None
    wanted = {
        "auth_header_name": settings.LEAD_WEBHOOK_AUTH_HEADER,
        "auth_header_value": settings.LEAD_WEBHOOK_AUTH_VALUE,
    }
    if endpoint is None:
        defaults = {"name": "LEAD_WEBHOOK_URL", "url": url, **wanted}
        if settings.LEAD_WEBHOOK_SECRET:
            defaults["secret"] = settings.LEAD_WEBHOOK_SECRET
        # get_or_create: two first leads at once must not fail on the one-row constraint.
        endpoint, created = WebhookEndpoint.objects.get_or_create(
            from_settings=True, defaults=defaults
        )
        if created:
            return endpoint
    if settings.LEAD_WEBHOOK_SECRET and endpoint.secret != settings.LEAD_WEBHOOK_SECRET:
        webhook_endpoint_rotate_secret(endpoint=endpoint, secret=settings.LEAD_WEBHOOK_SECRET)
    changed = [field for field, value in wanted.items() if getattr(endpoint, field) != value]
    for field in changed:
        setattr(endpoint, field, wanted[field])
    if endpoint.url != url:
        endpoint.url = url
        changed.append("url")
    if changed:
        endpoint.save(update_fields=changed)
    # A new URL, or the variable set again, switches the endpoint back on; a 410 from the same
    # URL keeps it off until an admin turns it on.
    if not endpoint.is_active and (
        "url" in changed or endpoint.disabled_reason == SETTINGS_ENDPOINT_UNSET
    ):
        webhook_endpoint_set_active(endpoint=endpoint, active=True)
    return endpoint


def webhook_endpoint_set_active(
    *,
    endpoint: WebhookEndpoint,
    active: bool,
    reason: str = "",
    by: User | None = None,
    now: datetime | None = None,
) -> bool:
    """Switch an endpoint on or off: the one place `is_active` changes. True if it changed.

    Off pauses it: leads keep queueing rows for it, which wait until it is on again (then they
    go out at once). The sessions waiting on it show `paused` meanwhile. Call it outside a
    transaction that holds session or delivery rows (it re-syncs sessions after its own commit,
    in the lock order delivery -> session -> endpoint).
    """
    now = now or timezone.now()
    with transaction.atomic():
        changes: dict[str, object] = {"is_active": active}
        if active:
            changes.update(disabled_at=None, disabled_reason="", failing_since=None)
        else:
            who = f" by {by.get_username()}" if by else ""
            changes.update(disabled_at=now, disabled_reason=(reason or f"Switched off{who}.")[:500])
        changed = (
            WebhookEndpoint.objects.filter(pk=endpoint.pk)
            .exclude(is_active=active)
            .update(**changes)
        )
    for field, value in changes.items():
        setattr(endpoint, field, value)
    if not changed:
        return False
    logger.info(
        "Webhook endpoint %s (%s) switched %s%s: %s",
        endpoint.pk,
        endpoint.name,
        "on" if active else "off",
        f" by {by}" if by else "",
        reason or "-",
    )
    if active:
        # Held leads go out now, not at the end of a backoff that began before the pause.
        Delivery.objects.filter(
            endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING, next_attempt_at__gt=now
        ).update(next_attempt_at=now)
    sessions_resync_for_endpoint(endpoint_id=endpoint.pk, now=now)
    return True


def sessions_resync_for_endpoint(*, endpoint_id: int, now: datetime | None = None) -> int:
    """Re-derive the delivery state of every session with a row waiting on this endpoint."""
    session_ids = (
        Delivery.objects.filter(
            endpoint_id=endpoint_id,
            session__isnull=False,
            event_type=WebhookEvent.LEAD_CAPTURED,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING],
        )
        .values_list("session_id", flat=True)
        .distinct()
    )
    count = 0
    for session_id in session_ids.iterator():
        with transaction.atomic():
            session_delivery_state_sync(session_id=session_id, now=now)
        count += 1
    return count


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, secret: str, now: datetime | None = None
) -> WebhookEndpoint:
    """Give the endpoint a new signing secret; the old one keeps signing for the overlap window."""
    if secret == endpoint.secret:
        return endpoint
    endpoint.previous_secret = endpoint.secret
    endpoint.secret = secret
    endpoint.secret_rotated_at = now or timezone.now()
    endpoint.save(update_fields=["secret", "previous_secret", "secret_rotated_at"])
    return endpoint


def endpoint_signing_secrets(
    endpoint: WebhookEndpoint, *, now: datetime | None = None
) -> list[str]:
    """The secrets a send is signed with: the current one, and the previous during the overlap."""
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.secret_rotated_at:
        overlap = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        if (now or timezone.now()) < endpoint.secret_rotated_at + overlap:
            secrets.append(endpoint.previous_secret)
    return secrets


def endpoints_for(*, site_id: int | None, event_type: str) -> list[WebhookEndpoint]:
    """Endpoints that want this event: the site's own, every-site ones, the global one.

    Switched-off endpoints are included (their rows wait, paused), except the LEAD_WEBHOOK_URL
    row while that variable is unset: then webhooks are off by configuration, not paused.
    """
    endpoint_from_settings()
    candidates = WebhookEndpoint.objects.filter(Q(site__isnull=True) | Q(site_id=site_id)).exclude(
        from_settings=True, is_active=False, disabled_reason=SETTINGS_ENDPOINT_UNSET
    )
    return [endpoint for endpoint in candidates if endpoint.wants(event_type)]


# --- Enqueue (inside the caller's transaction) ------------------------------------------------


def lead_deliveries_enqueue(*, session: ChatSession) -> list[Delivery]:
    """Queue the `lead.captured` webhook for every endpoint; called inside `lead_capture`.

    The session row is already locked by the caller. Its `delivery_state` becomes `pending`,
    `paused` when every endpoint is switched off (the rows wait), or `disabled` when no endpoint
    is configured.
    """
    now = timezone.now()
    event_id = new_event_id()
    endpoints = endpoints_for(site_id=session.site_id, event_type=WebhookEvent.LEAD_CAPTURED)
    payload = lead_payload(session=session, event_id=event_id, occurred_at=now) if endpoints else {}
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                event_id=event_id,
                event_type=WebhookEvent.LEAD_CAPTURED,
                kind=DeliveryKind.WEBHOOK,
                endpoint=endpoint,
                session=session,
                subject_email=session.lead_email.lower(),
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ]
    )
    if not deliveries:
        state = DeliveryState.DISABLED
    elif any(endpoint.is_active for endpoint in endpoints):
        state = DeliveryState.PENDING
    else:
        state = DeliveryState.PAUSED
    session_delivery_state_set(session=session, state=state, now=now)
    return deliveries


def ping_delivery_enqueue(*, endpoint: WebhookEndpoint) -> Delivery:
    now = timezone.now()
    event_id = new_event_id()
    return Delivery.objects.create(
        event_id=event_id,
        event_type=WebhookEvent.TEST,
        kind=DeliveryKind.WEBHOOK,
        endpoint=endpoint,
        payload=ping_payload(event_id=event_id, occurred_at=now),
        next_attempt_at=now,
        created_at=now,
    )


def email_enqueue(
    *,
    event_type: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str,
    session: ChatSession | None = None,
    subject_email: str = "",
) -> Delivery:
    """Queue one email. Its event id is the Idempotency-Key, so a resend is never a duplicate."""
    now = timezone.now()
    return Delivery.objects.create(
        event_id=new_event_id(),
        event_type=event_type,
        kind=DeliveryKind.EMAIL,
        session=session,
        subject_email=subject_email.lower(),
        payload={
            "to": list(to),
            "from": settings.DEFAULT_FROM_EMAIL,
            "subject": " ".join(subject.split())[:250],  # no header injection, sane length
            "text": text,
            "html": html,
        },
        next_attempt_at=now,
        created_at=now,
    )


def channel_reply_enqueue(
    *, kind: str, event_type: str, session: ChatSession, payload: dict[str, Any]
) -> Delivery:
    """Queue one reply to a channel (a Messenger message): sent by the sender registered for
    `kind`, with the outbox's retries and attempt log. Call it inside the transaction that
    stores the reply, so the two commit together."""
    now = timezone.now()
    return Delivery.objects.create(
        event_id=new_event_id(),
        event_type=event_type,
        kind=kind,
        session=session,
        payload=payload,
        next_attempt_at=now,
        created_at=now,
    )


def session_console_url(session: ChatSession) -> str:
    return f"{settings.PUBLIC_BASE_URL}/admin/sessions_app/chatsession/{session.pk}/change/"


LEAD_NOTIFY_EMAIL_EVENT = "lead.notify"


def lead_notify_email_enqueue(*, session: ChatSession) -> Delivery | None:
    """Queue the new-lead email to LEAD_NOTIFY_EMAILS; None when nobody is to be told."""
    recipients = [address for address in settings.LEAD_NOTIFY_EMAILS if address]
    if not recipients:
        return None
    path = reverse("dashboard:session", kwargs={"public_id": session.public_id})
    context = {
        "session": session,
        "site_name": session.site.name if session.site is not None else "",
        "url": f"{settings.PUBLIC_BASE_URL}{path}",
    }
    who = session.lead_name or session.lead_email
    return email_enqueue(
        event_type=LEAD_NOTIFY_EMAIL_EVENT,
        to=recipients,
        subject=f"[leadchat] New lead: {who}",
        text=render_to_string("emails/lead_new.txt", context),
        html=render_to_string("emails/lead_new.html", context),
        session=session,
        subject_email=session.lead_email,
    )


def qa_issue_email_enqueue(*, session: ChatSession, by: User | None, note: str) -> Delivery | None:
    """Queue the QA issue email to QA_NOTIFY_EMAILS and the site's developers; None when nobody
    is to be told."""
    developers = session.site.developer_email_list if session.site is not None else []
    recipients = _unique([*settings.QA_NOTIFY_EMAILS, *developers])
    if not recipients:
        logger.info(
            "QA issue on session %s: QA_NOTIFY_EMAILS and the site's developer list are empty, "
            "no email.",
            session.pk,
        )
        return None
    context = {
        "session": session,
        "site_name": session.site.name if session.site is not None else "",
        "by_name": (by.get_full_name() or by.get_username()) if by else "someone",
        "note": note,
        "console_url": session_console_url(session),
    }
    who = session.lead_name or session.lead_email or "anonymous visitor"
    return email_enqueue(
        event_type=QA_ISSUE_EMAIL_EVENT,
        to=recipients,
        subject=f"[leadchat QA] Issue flagged: {who}",
        text=render_to_string("emails/qa_issue.txt", context),
        html=render_to_string("emails/qa_issue.html", context),
        session=session,
        subject_email=session.lead_email,
    )


def _unique(addresses: Iterable[str]) -> list[str]:
    """Each address once (case-insensitively), in the order given, blanks dropped."""
    seen: set[str] = set()
    unique = []
    for address in addresses:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(address.strip())
    return unique


def qa_fixed_email_enqueue(
    *, session: ChatSession, by: User | None, feedback: str
) -> Delivery | None:
    """Queue "fixed, awaiting a re-check" to QA_NOTIFY_EMAILS; None when the list is empty."""
    recipients = _unique(settings.QA_NOTIFY_EMAILS)
    if not recipients:
        logger.info("Session %s fixed: QA_NOTIFY_EMAILS is empty, no email.", session.pk)
        return None
    context = {
        "session": session,
        "site_name": session.site.name if session.site is not None else "",
        "by_name": (by.get_full_name() or by.get_username()) if by else "someone",
        "feedback": feedback,
        "qa_note": session.qa_notes,
        "console_url": session_console_url(session),
    }
    who = session.lead_name or session.lead_email or "anonymous visitor"
    return email_enqueue(
        event_type=QA_FIXED_EMAIL_EVENT,
        to=recipients,
        subject=f"[leadchat QA] Fixed, awaiting a re-check: {who}",
        text=render_to_string("emails/qa_fixed.txt", context),
        html=render_to_string("emails/qa_fixed.html", context),
        session=session,
        subject_email=session.lead_email,
    )


# --- The worker's side: claim, begin, record, release ----------------------------------------


def _due(now: datetime) -> Q:
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, lease_until__lt=now
    )
    # Rows of a disabled endpoint wait (not lost) until an admin enables it again. Kinds other
    # than webhooks (emails, channel replies) have no endpoint.
    return due & (~Q(kind=DeliveryKind.WEBHOOK) | Q(endpoint__is_active=True))


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


def deliveries_claim(
    *,
    worker: str,
    limit: int,
    now: datetime | None = None,
    ids: Iterable[int] | None = None,
) -> list[Delivery]:
    """Claim up to `limit` due rows for `worker` in one short transaction; returns them.

    A claim sets `sending`, a lease and a fresh claim token. It sends nothing and counts no
    attempt: `delivery_send_begin` does both, per row, right before its request. Rows whose
    lease expired (their worker died, or never got to them) are due again.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    candidates = Delivery.objects.filter(_due(now)).order_by("next_attempt_at", "id")
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    values = {
        "status": DeliveryStatus.SENDING,
        "claim_token": token,
        "claimed_by": worker[:100],
        "lease_until": _lease(now),
    }
    picked = claim(candidates, due=_due(now), values=values, limit=limit)
    if not picked:
        return []
    return list(
        Delivery.objects.filter(claim_token=token)
        .select_related("endpoint")
        .order_by("next_attempt_at", "id")
    )


def _held(delivery: Delivery) -> Delivery | None:
    """The row, locked, if `delivery`'s claim still holds it; else an empty queryset's None."""
    return (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery.pk, status=DeliveryStatus.SENDING, claim_token=delivery.claim_token)
        .first()
    )


def delivery_send_begin(
    *, delivery: Delivery, worker: str = "", now: datetime | None = None
) -> DeliveryAttempt | None:
    """Take one claimed row onto the wire: renew its lease, count and log the attempt.

    Returns the attempt row to send under, or None when the row must not be sent: the claim
    was lost (the lease ran out and another worker took it, an admin cancelled it, the person
    was erased), its endpoint was switched off meanwhile (the row is handed back to wait), or
    it has already ended DELIVERY_MAX_CRASHES sends without an outcome (it is failed).

    The attempt row is written before the request goes out, so a send cut short by `kill -9`
    still shows in the log; the next worker marks it interrupted.
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = _held(delivery)
        if row is None:
            logger.warning(
                "Delivery %s: claim lost before sending; %s skips it.", delivery.pk, worker
            )
            return None
        if row.kind == DeliveryKind.WEBHOOK and not (row.endpoint and row.endpoint.is_active):
            # Its endpoint went off after the claim (a 410 earlier in this batch): wait.
            _hand_back(row)
            _sync_session(row, now)
            return None
        interrupted = row.attempt_log.filter(finished_at__isnull=True).update(
            finished_at=now,
            error="Interrupted: the worker stopped mid-send (killed?); the receiver may have "
            "got it.",
        )
        row.crashes += interrupted
        registered = delivery_sender(row.kind)
        if interrupted and registered and not registered.resend_after_interruption:
            _fail_interrupted(row, now=now)
            return None
        if row.crashes >= settings.DELIVERY_MAX_CRASHES:
            _fail_after_crashes(row, now=now, error="the worker stopped mid-send")
            return None
        row.attempts += 1
        row.lease_until = _lease(now)
        fields = ["attempts", "lease_until", "crashes"]
        if row.window_started_at is None:
            row.window_started_at = now
            fields.append("window_started_at")
        row.save(update_fields=fields)
        attempt = DeliveryAttempt.objects.create(
            delivery=row,
            number=row.attempts,
            attempted_at=now,
            worker=worker[:100],
            requested_by_id=row.redelivery_requested_by_id,
        )
    delivery.attempts = row.attempts
    delivery.lease_until = row.lease_until
    delivery.endpoint = row.endpoint
    return attempt


def deliveries_send_begin(
    *, deliveries: Sequence[Delivery], worker: str = "", now: datetime | None = None
) -> list[tuple[Delivery, DeliveryAttempt | None]]:
    """`delivery_send_begin` for several claimed rows at once: the concurrent worker's step.

    Each row gets what `delivery_send_begin` would give it, but the rows it can take onto the
    wire as they are (still held, endpoint on, no send of theirs cut short, under the crash
    limit) are taken in one transaction: one lock, one lease renewal, one insert of their
    attempt rows. At a thousand sends a second, a round trip per row is what the worker would
    spend its time on. Every other row goes through `delivery_send_begin` itself, one by one
    after that transaction, so the lost claims, paused endpoints and interrupted sends are
    settled by the same code as ever.

    Returns (delivery, attempt or None) for each row, in the order given. The lease of each row
    is renewed here, just before its send: call it only for rows about to go out.
    """
    now = now or timezone.now()
    tokens = {delivery.pk: delivery.claim_token for delivery in deliveries}
    begun: dict[int, DeliveryAttempt] = {}
    with transaction.atomic():
        held = [
            row
            for row in Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            # The claim read the payload already; decoding it again per row is waste.
            .defer("payload", "last_error")
            .filter(pk__in=list(tokens), status=DeliveryStatus.SENDING)
            .order_by("pk")
            if row.claim_token == tokens[row.pk]
        ]
        cut_short = set(
            DeliveryAttempt.objects.filter(
                delivery_id__in=[row.pk for row in held], finished_at__isnull=True
            ).values_list("delivery_id", flat=True)
        )
        ready = [
            row
            for row in held
            if row.pk not in cut_short
            and row.crashes < settings.DELIVERY_MAX_CRASHES
            and (row.kind != DeliveryKind.WEBHOOK or (row.endpoint and row.endpoint.is_active))
        ]
        if ready:
            lease = _lease(now)
            _rows_update(
                Delivery,
                [row.pk for row in ready],
                "attempts = attempts + 1, lease_until = %s, "
                "window_started_at = COALESCE(window_started_at, %s)",
                [lease, now],
            )
            attempts = DeliveryAttempt.objects.bulk_create(
                [
                    DeliveryAttempt(
                        delivery_id=row.pk,
                        number=row.attempts + 1,
                        attempted_at=now,
                        worker=worker[:100],
                        requested_by_id=row.redelivery_requested_by_id,
                    )
                    for row in ready
                ]
            )
            for row, attempt in zip(ready, attempts, strict=True):
                row.attempts += 1
                row.lease_until = lease
                begun[row.pk] = attempt
                attempt.delivery = row
    outcome: list[tuple[Delivery, DeliveryAttempt | None]] = []
    for delivery in deliveries:
        if delivery.pk not in begun:
            outcome.append(
                (delivery, delivery_send_begin(delivery=delivery, worker=worker, now=now))
            )
            continue
        attempt = begun[delivery.pk]
        row = attempt.delivery
        delivery.attempts = row.attempts
        delivery.lease_until = row.lease_until
        delivery.endpoint = row.endpoint
        outcome.append((delivery, attempt))
    return outcome


def _hand_back(row: Delivery) -> None:
    row.status = DeliveryStatus.PENDING
    row.claim_token = ""
    row.claimed_by = ""
    row.lease_until = None
    row.save(update_fields=["status", "claim_token", "claimed_by", "lease_until"])


def _sync_session(row: Delivery, now: datetime) -> None:
    if row.session_id and row.event_type == WebhookEvent.LEAD_CAPTURED:
        session_delivery_state_sync(session_id=row.session_id, now=now)


def _fail_after_crashes(row: Delivery, *, now: datetime, error: str) -> None:
    _fail_in_leadchat(
        row,
        now=now,
        error=f"Failed in leadchat itself {row.crashes} time(s) in a row: {error}",
        result_error=error,
        reason=f"it failed in leadchat itself {row.crashes} time(s) in a row "
        "(a worker killed mid-send, or an error on this row); fix the cause, then redeliver",
    )


def _fail_interrupted(row: Delivery, *, now: datetime) -> None:
    """A send of a kind that cannot be repeated safely was cut short: fail it, never resend.

    The request may have reached the receiver before the worker died, and nothing tells a
    repeat apart (no idempotency key), so sending again could make a person read the same reply
    twice. The row, its text and its attempt stay; a person redelivers it from the admin after
    checking the conversation.
    """
    _fail_in_leadchat(
        row,
        now=now,
        error="The worker stopped while this was being sent, so it may have arrived; the "
        "receiver has no idempotency key, so leadchat does not send it again by itself. Check "
        "the conversation and redeliver it if it did not arrive.",
        result_error="interrupted mid-send",
        reason="the worker stopped mid-send and it is not sent twice; redeliver it if the "
        "person did not get it",
    )


def _fail_in_leadchat(
    row: Delivery, *, now: datetime, error: str, result_error: str, reason: str
) -> None:
    """Fail a claimed row for something on leadchat's side (not the receiver's answer): release
    the claim, say why on the row, and record the automation error (not for test pings)."""
    row.status = DeliveryStatus.FAILED
    row.claim_token = ""
    row.claimed_by = ""
    row.lease_until = None
    row.last_error = error[:2000]
    row.last_attempt_at = now
    row.save(
        update_fields=[
            "status",
            "claim_token",
            "claimed_by",
            "lease_until",
            "crashes",
            "last_error",
            "last_attempt_at",
        ]
    )
    _sync_session(row, now)
    if row.event_type != WebhookEvent.TEST:
        _record_failure(row=row, result=SendResult(None, 0, result_error), reason=reason)


def deliveries_release(*, deliveries: Iterable[Delivery]) -> int:
    """Hand back claimed rows that were not sent (a worker stopping): due again at once."""
    released = 0
    for delivery in deliveries:
        released += Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claim_token=delivery.claim_token
        ).update(status=DeliveryStatus.PENDING, claim_token="", claimed_by="", lease_until=None)
    return released


def retry_delay(*, row: Delivery, result: SendResult, now: datetime) -> tuple[float, bool] | None:
    """(seconds until the next try, whether it uses a schedule step), or None to give up.

    The schedule (WEBHOOK_RETRY_SCHEDULE, about three days) is the retry budget. A Retry-After
    from a 429 or 503 is honoured without using a step, so a receiver asking for 3 s does not
    burn ten tries in half a minute; the round still ends once its age passes the schedule's
    total span.
    """
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    started = row.window_started_at or now
    if (now - started).total_seconds() >= sum(schedule):
        return None
    if result.status_code in (429, 503) and result.retry_after is not None:
        return min(max(result.retry_after, 1.0), MAX_RETRY_AFTER_SECONDS), False
    if row.schedule_step >= len(schedule):
        return None
    # +-20% jitter so a backlog that failed together does not retry in lockstep.
    return schedule[row.schedule_step] * random.uniform(0.8, 1.2), True


def delivery_record_attempt(
    *,
    delivery: Delivery,
    attempt: DeliveryAttempt,
    result: SendResult,
    now: datetime | None = None,
    retry: bool = True,
) -> Delivery | None:
    """Log the outcome of one send and move the delivery on: delivered, retry later, or failed.

    Only the claim holder moves the status. A send whose claim was lost meanwhile is still
    logged, since it happened. Returns None when the row is gone (erased while in flight).
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery.pk)
            .first()
        )
        if row is None:
            logger.warning(
                "Delivery %s was erased while in flight; nothing to record.", delivery.pk
            )
            return None
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error[:2000],
            response_body=result.response_body[:4096],
            finished_at=now,
        )
        owned = row.status == DeliveryStatus.SENDING and row.claim_token == delivery.claim_token
        if not owned:
            logger.warning(
                "Delivery %s: attempt logged, but %s no longer holds it (now %s).",
                row.pk,
                attempt.worker,
                row.status,
            )
            return row
        row.last_attempt_at = now
        row.last_status_code = result.status_code
        row.last_error = result.error[:2000]
        row.last_latency_ms = result.duration_ms
        row.claim_token = ""
        row.claimed_by = ""
        row.lease_until = None
        row.redelivery_requested_by = None
        fields = [
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "last_latency_ms",
            "claim_token",
            "claimed_by",
            "lease_until",
            "redelivery_requested_by",
            "status",
            "crashes",
        ]
        endpoint_gone = row.kind == DeliveryKind.WEBHOOK and result.status_code == 410
        failure_reason = ""
        if result.internal:
            row.crashes += 1
        else:
            row.crashes = 0
        if result.ok:
            row.status = DeliveryStatus.DELIVERED
            row.delivered_at = now
            fields.append("delivered_at")
        elif endpoint_gone:
            # 410 Gone: this URL is retired. The endpoint goes off and the lead waits for it
            # (due at once when an admin turns it back on); it is not failed.
            row.status = DeliveryStatus.PENDING
            row.next_attempt_at = now
            fields.append("next_attempt_at")
        elif result.internal and row.crashes >= settings.DELIVERY_MAX_CRASHES:
            row.status = DeliveryStatus.FAILED
            failure_reason = (
                f"it failed in leadchat itself {row.crashes} time(s) in a row; fix the cause, "
                "then redeliver"
            )
        elif result.permanent or not retry:
            row.status = DeliveryStatus.FAILED
            failure_reason = "the receiver refused it" if result.permanent else "not retried"
        else:
            delay = retry_delay(row=row, result=result, now=now)
            if delay is None:
                row.status = DeliveryStatus.FAILED
                failure_reason = f"gave up after {row.attempts} attempt(s)"
            else:
                seconds, uses_step = delay
                row.status = DeliveryStatus.PENDING
                row.next_attempt_at = now + timedelta(seconds=seconds)
                fields.append("next_attempt_at")
                if uses_step:
                    row.schedule_step += 1
                    fields.append("schedule_step")
        row.save(update_fields=fields)
        _sync_session(row, now)
        if row.status == DeliveryStatus.FAILED and row.event_type != WebhookEvent.TEST:
            _record_failure(row=row, result=result, reason=failure_reason)
        switch_off = _endpoint_note_outcome(row=row, result=result, gone=endpoint_gone, now=now)
    if switch_off:
        # After the commit: switching off re-syncs other sessions, which must not happen
        # while this transaction holds the delivery and session rows (lock order).
        endpoint, reason = switch_off
        if webhook_endpoint_set_active(endpoint=endpoint, active=False, reason=reason, now=now):
            _endpoint_switched_off_notify(endpoint=endpoint, reason=reason, gone=endpoint_gone)
    return row


def deliveries_record_delivered(
    *, outcomes: Sequence[tuple[Delivery, DeliveryAttempt, SendResult, datetime]]
) -> list[Delivery | None]:
    """`delivery_record_attempt` for several sends the receiver accepted (2xx), in one
    transaction: the concurrent worker's common case. (delivery, attempt, result, when) each.

    A 2xx moves a row one way only (delivered, crashes reset, claim released, endpoint healthy),
    so the rows are written together: the attempts' outcomes, the rows, their sessions' delivery
    state and each endpoint's health, in the lock order delivery -> session -> endpoint. As in
    `delivery_record_attempt`, a row whose claim was lost meanwhile gets its attempt logged and
    is not moved, and a row erased while in flight gives None. Any other outcome goes through
    `delivery_record_attempt`.
    """
    if not outcomes:
        return []
    if not all(result.ok for _delivery, _attempt, result, _at in outcomes):
        raise ValueError("deliveries_record_delivered takes 2xx outcomes only.")
    with transaction.atomic():
        rows = {
            row.pk: row
            for row in Delivery.objects.select_for_update(of=("self",))
            .only("pk", "status", "claim_token", "session_id", "event_type", "endpoint_id")
            .filter(pk__in=[delivery.pk for delivery, *_ in outcomes])
            .order_by("pk")
        }
        finished = []
        for _delivery, attempt, result, at in outcomes:
            attempt.status_code = result.status_code
            attempt.duration_ms = result.duration_ms
            attempt.error = result.error[:2000]
            attempt.response_body = result.response_body[:4096]
            attempt.finished_at = at
            finished.append(attempt)
        _rows_set(
            DeliveryAttempt,
            finished,
            ["status_code", "duration_ms", "error", "response_body", "finished_at"],
        )
        moved: list[Delivery] = []
        recorded: list[Delivery | None] = []
        for delivery, attempt, result, at in outcomes:
            row = rows.get(delivery.pk)
            recorded.append(row)
            if row is None:
                logger.warning(
                    "Delivery %s was erased while in flight; nothing to record.", delivery.pk
                )
                continue
            if row.status != DeliveryStatus.SENDING or row.claim_token != delivery.claim_token:
                logger.warning(
                    "Delivery %s: attempt logged, but %s no longer holds it (now %s).",
                    row.pk,
                    attempt.worker,
                    row.status,
                )
                continue
            row.status = DeliveryStatus.DELIVERED
            row.delivered_at = row.last_attempt_at = at
            row.last_status_code = result.status_code
            row.last_error = ""  # a 2xx carries no error (webhook_post, send_email)
            row.last_latency_ms = result.duration_ms
            row.claim_token = row.claimed_by = ""
            row.lease_until = None
            row.redelivery_requested_by = None
            row.crashes = 0
            moved.append(row)
        _rows_set(
            Delivery,
            moved,
            ["delivered_at", "last_attempt_at", "last_status_code", "last_latency_ms"],
            same={
                "status": DeliveryStatus.DELIVERED,
                "last_error": "",
                "claim_token": "",
                "claimed_by": "",
                "lease_until": None,
                "redelivery_requested_by": None,
                "crashes": 0,
            },
        )
        latest = max(at for *_, at in outcomes)
        sessions_delivery_state_sync(
            session_ids={
                row.session_id
                for row in moved
                if row.session_id and row.event_type == WebhookEvent.LEAD_CAPTURED
            },
            now=latest,
        )
        endpoint_ids = sorted({row.endpoint_id for row in moved if row.endpoint_id})
        if endpoint_ids:
            WebhookEndpoint.objects.filter(pk__in=endpoint_ids).update(
                last_success_at=latest, failing_since=None
            )
    return recorded


def _rows_update(
    model: type[Model], pks: Sequence[int], assignments: str, params: list[Any]
) -> int:
    """UPDATE `model`'s rows `pks` with one SET clause of constants (the caller's SQL)."""
    if not pks:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE id IN ({marks})",  # noqa: S608 (constants)
            [*params, *pks],
        )
        return int(cursor.rowcount)


def _rows_set(
    model: type[Model],
    instances: Sequence[Model],
    fields: Sequence[str],
    *,
    same: Mapping[str, Any] | None = None,
) -> None:
    """Write `fields` of each instance (its own values) and `same` (one value for all) in one
    UPDATE ... FROM (VALUES ...) on PostgreSQL. Django's bulk_update builds a CASE per field
    and row, which cost the concurrent worker more than the sends themselves; elsewhere
    (SQLite, the tests' other backend) it is what runs."""
    if not instances:
        return
    same = dict(same or {})
    if connection.vendor != "postgresql":
        for instance in instances:
            for name, value in same.items():
                setattr(instance, name, value)
        model._default_manager.bulk_update(instances, [*fields, *same])
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [cast("Field[Any, Any]", meta.get_field(name)) for name in fields]
    constants = [cast("Field[Any, Any]", meta.get_field(name)) for name in same]
    casts = ", ".join(
        [f"%s::{meta.pk.db_type(connection)}"]
        + [f"%s::{field.db_type(connection)}" for field in columns]
    )
    values = ", ".join([f"({casts})"] * len(instances))
    names = ", ".join(["id", *(quote(str(field.column)) for field in columns)])
    assignments = ", ".join(
        [f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in columns]
        + [f"{quote(str(field.column))} = %s" for field in constants]
    )
    # SET's constants come first in the statement, then the VALUES.
    params: list[Any] = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(constants, same.values(), strict=True)
    ]
    for instance in instances:
        params.append(instance.pk)
        params += [
            field.get_db_prep_save(getattr(instance, field.attname), connection)
            for field in columns
        ]
    table = quote(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 (names and marks only)
            f"FROM (VALUES {values}) AS v({names}) WHERE t.id = v.id",
            params,
        )
    for instance in instances:
        for name, value in same.items():
            setattr(instance, name, value)


def delivery_record_crash(
    *,
    delivery: Delivery,
    attempt: DeliveryAttempt | None,
    error: str,
    now: datetime | None = None,
) -> Delivery | None:
    """An exception in leadchat while handling one row: record it on the row, keep the worker.

    With an attempt (the send began) this is that attempt's outcome. Without one (begin itself
    failed) the row is handed back with a backoff, counting a crash, so a row that raises on
    every try ends failed instead of stranding its batch or killing worker after worker.
    """
    now = now or timezone.now()
    result = SendResult(None, 0, f"Internal error: {error}"[:2000], internal=True)
    if attempt is not None:
        return delivery_record_attempt(delivery=delivery, attempt=attempt, result=result, now=now)
    with transaction.atomic():
        row = _held(delivery)
        if row is None:
            return None
        row.crashes += 1
        row.last_error = result.error
        if row.crashes >= settings.DELIVERY_MAX_CRASHES:
            _fail_after_crashes(row, now=now, error=error)
            return row
        schedule = settings.WEBHOOK_RETRY_SCHEDULE
        row.next_attempt_at = now + timedelta(seconds=schedule[min(row.crashes, len(schedule)) - 1])
        row.save(update_fields=["crashes", "last_error", "next_attempt_at"])
        _hand_back(row)
    return row


def _endpoint_note_outcome(
    *, row: Delivery, result: SendResult, gone: bool, now: datetime
) -> tuple[WebhookEndpoint, str] | None:
    """Keep the endpoint's health; returns (endpoint, reason) when it must be switched off."""
    if not row.endpoint_id or result.internal:
        return None
    endpoints = WebhookEndpoint.objects.filter(pk=row.endpoint_id)
    if result.ok:
        endpoints.update(last_success_at=now, failing_since=None)
        return None
    reason = (result.error or f"HTTP {result.status_code}")[:500]
    endpoints.update(last_failure_at=now, last_failure_reason=reason)
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    endpoint = endpoints.get()
    if gone:
        return endpoint, f"Receiver answered 410 Gone to event {row.event_id}."
    days = settings.WEBHOOK_DISABLE_AFTER_FAILING_DAYS
    # failing_since was set just above if it was empty.
    since = endpoint.failing_since
    if days and endpoint.is_active and since is not None and since <= now - timedelta(days=days):
        return endpoint, (
            f"Every send failed for {days:g} days (since "
            f"{since:%Y-%m-%d %H:%M} UTC); last error: {reason}"
        )[:500]
    return None


def _endpoint_switched_off_notify(*, endpoint: WebhookEndpoint, reason: str, gone: bool) -> None:
    """Tell people an endpoint went off by itself: an automation error, and the admins by email."""
    waiting = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).count()
    automation_error_record(
        source=AutomationError.Source.WEBHOOK,
        workflow=endpoint.name,
        node="endpoint.disabled",
        message=(
            f"Webhook endpoint {endpoint.name!r} was switched off: {reason} "
            f"{waiting} delivery(ies) are held and go out when it is enabled again."
        ),
        execution_id=f"endpoint:{endpoint.pk}:off:{endpoint.disabled_at:%Y%m%d%H%M%S%f}",
        details={"endpoint_id": endpoint.pk, "held": waiting, "gone": gone},
    )
    recipients = sorted(
        {
            address
            for address in User.objects.filter(
                role=Role.ADMIN, is_active=True, email__gt=""
            ).values_list("email", flat=True)
        }
    )
    if not recipients:
        logger.warning("Endpoint %s switched off; no admin has an email address.", endpoint.pk)
        return
    context = {
        "endpoint": endpoint,
        "reason": reason,
        "waiting": waiting,
        "admin_url": (
            f"{settings.PUBLIC_BASE_URL}/admin/sessions_app/webhookendpoint/{endpoint.pk}/change/"
        ),
    }
    email_enqueue(
        event_type=ENDPOINT_DISABLED_EMAIL_EVENT,
        to=recipients,
        subject=f"[leadchat] Webhook endpoint switched off: {endpoint.name}",
        text=render_to_string("emails/endpoint_disabled.txt", context),
        html=render_to_string("emails/endpoint_disabled.html", context),
    )


def _record_failure(*, row: Delivery, result: SendResult, reason: str) -> None:
    registered = delivery_sender(row.kind)
    source: str
    if row.kind == DeliveryKind.EMAIL:
        source, what = AutomationError.Source.EMAIL, "Email"
        workflow = row.event_type
    elif registered is not None:
        source, what = registered.error_source, registered.label
        workflow = row.event_type
    else:
        source, what = AutomationError.Source.WEBHOOK, "Webhook"
        workflow = row.endpoint.name if row.endpoint else row.event_type
    automation_error_record(
        source=source,
        workflow=workflow,
        node=row.event_type,
        message=f"{what} {row.event_id} failed: {reason}. Last error: {result.error or '-'}",
        execution_id=f"delivery:{row.pk}:attempt:{row.attempts}",
        details={
            "delivery_id": row.pk,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "endpoint_id": row.endpoint_id,
            "attempts": row.attempts,
            "last_status_code": result.status_code,
        },
        session=row.session,
    )


_IN_PROGRESS = {DeliveryStatus.PENDING, DeliveryStatus.SENDING}


def session_delivery_state_sync(*, session_id: int, now: datetime | None = None) -> str:
    """Derive `ChatSession.delivery_state` from the session's lead webhook rows, and set it
    through the sessions service.

    Locks the session row first, so two workers finishing two endpoints of one lead at once
    cannot leave it on the state the slower one read before the faster one committed.
    """
    now = now or timezone.now()
    session = (
        ChatSession.objects.select_for_update()
        .only("pk", "delivery_state", "updated_at")
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        return DeliveryState.NONE
    rows: set[tuple[str, bool | None]] = set(
        _lead_rows(session_ids=[session_id]).values_list("status", "endpoint__is_active")
    )
    state = _derived_state(rows)
    session_delivery_state_set(session=session, state=state, now=now)
    return state


def sessions_delivery_state_sync(*, session_ids: Iterable[int], now: datetime) -> None:
    """`session_delivery_state_sync` for several sessions, in a few statements whatever their
    number: the sessions locked in id order (two workers syncing overlapping sets cannot
    deadlock), their lead rows read in one query, one UPDATE per resulting state."""
    ids = sorted(set(session_ids))
    if not ids:
        return
    sessions = list(
        ChatSession.objects.select_for_update()
        .only("pk", "delivery_state", "updated_at")
        .filter(pk__in=ids)
        .order_by("pk")
    )
    rows: dict[int, set[tuple[str, bool | None]]] = {session.pk: set() for session in sessions}
    for session_id, status, active in _lead_rows(session_ids=list(rows)).values_list(
        "session_id", "status", "endpoint__is_active"
    ):
        rows[session_id].add((status, active))
    by_state: dict[str, list[ChatSession]] = {}
    for session in sessions:
        by_state.setdefault(_derived_state(rows[session.pk]), []).append(session)
    for state, group in by_state.items():
        sessions_delivery_state_set(sessions=group, state=state, now=now)


def _lead_rows(*, session_ids: Sequence[int]) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        session_id__in=session_ids,
        kind=DeliveryKind.WEBHOOK,
        event_type=WebhookEvent.LEAD_CAPTURED,
    ).exclude(status=DeliveryStatus.CANCELLED)


def _derived_state(rows: set[tuple[str, bool | None]]) -> str:
    """A session's delivery state from its lead rows' (status, endpoint is active)."""
    statuses = {status for status, _active in rows}
    waiting = {active for status, active in rows if status in _IN_PROGRESS}
    if not rows:
        return DeliveryState.DISABLED
    if True in waiting:
        return DeliveryState.PENDING
    if waiting:
        return DeliveryState.PAUSED  # every row still to send waits for an endpoint that is off
    if DeliveryStatus.FAILED in statuses:
        return DeliveryState.FAILED
    return DeliveryState.DELIVERED


# --- People's actions: redeliver, cancel ------------------------------------------------------


DELIVERY_WORDING = MoveWording(
    "a delivery",
    list_allowed=False,
    hints={DeliveryStatus.SENDING: "It is being sent right now."},
)


def delivery_redeliver(
    *, delivery: Delivery, by: User | None, now: datetime | None = None
) -> Delivery:
    """Send the same event (same event id, same payload) again, as soon as a worker is free.

    A new round: the retry schedule and the crash count start over.
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = lock(delivery, related=["endpoint"])
        if row.status == DeliveryStatus.SENDING:
            # `sending -> pending` is the worker's own move (a retry); a person waits for it.
            raise TransitionNotAllowed("This delivery is being sent right now; try again shortly.")
        if row.endpoint is not None and not row.endpoint.is_active:
            raise TransitionNotAllowed(
                f"Endpoint {row.endpoint.name!r} is disabled; enable it before redelivering "
                "(its waiting deliveries then go out by themselves)."
            )
        check_move(DELIVERY_MOVES, row.status, DeliveryStatus.PENDING, wording=DELIVERY_WORDING)
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now
        row.redelivery_requested_by = by
        row.redelivery_requested_at = now
        row.schedule_step = 0
        row.window_started_at = None
        row.crashes = 0
        row.save(
            update_fields=[
                "status",
                "next_attempt_at",
                "redelivery_requested_by",
                "redelivery_requested_at",
                "schedule_step",
                "window_started_at",
                "crashes",
            ]
        )
        _sync_session(row, now)
    logger.info("Delivery %s (%s) redelivery asked by %s.", row.pk, row.event_id, by)
    return row


def deliveries_failed_since(
    *, since: datetime, endpoint: WebhookEndpoint | None = None
) -> QuerySet[Delivery]:
    """Failed webhook deliveries (test pings aside) whose last try was at or after `since`."""
    failed = Delivery.objects.filter(
        kind=DeliveryKind.WEBHOOK, status=DeliveryStatus.FAILED, last_attempt_at__gte=since
    ).exclude(event_type=WebhookEvent.TEST)
    if endpoint is not None:
        failed = failed.filter(endpoint=endpoint)
    return failed


def deliveries_redeliver_failed(
    *,
    since: datetime,
    endpoint: WebhookEndpoint | None = None,
    by: User | None = None,
) -> tuple[int, list[str]]:
    """Redeliver every failed webhook delivery whose last try was at or after `since`.

    Returns (how many were queued again, why the others were refused). Each row goes through
    `delivery_redeliver`, so each is checked and attributed as if redelivered by hand.
    """
    failed = deliveries_failed_since(since=since, endpoint=endpoint)
    queued, refused = 0, []
    for row in failed.order_by("last_attempt_at", "id").iterator():
        try:
            delivery_redeliver(delivery=row, by=by)
        except TransitionNotAllowed as exc:
            refused.append(f"{row.event_id}: {exc}")
        else:
            queued += 1
    return queued, refused


def delivery_cancel(*, delivery: Delivery, by: User | None) -> Delivery:
    """Stop a pending (or in-flight) delivery; a send already on the wire is logged, not undone."""
    now = timezone.now()
    with transaction.atomic():
        row = lock(delivery)
        check_move(DELIVERY_MOVES, row.status, DeliveryStatus.CANCELLED, wording=DELIVERY_WORDING)
        row.status = DeliveryStatus.CANCELLED
        row.cancelled_by = by
        row.cancelled_at = now
        row.claim_token = ""
        row.claimed_by = ""
        row.lease_until = None
        row.save(
            update_fields=[
                "status",
                "cancelled_by",
                "cancelled_at",
                "claim_token",
                "claimed_by",
                "lease_until",
            ]
        )
        _sync_session(row, now)
    return row


# --- Erasure ----------------------------------------------------------------------------------


def deliveries_erase(*, session_ids: Iterable[int], emails: Iterable[str]) -> int:
    """Delete every outbox row (and its attempts) holding these people's data (GDPR erasure)."""
    ids = list(session_ids)
    addresses = [email.lower() for email in emails if email]
    match = Q(session_id__in=ids) if ids else Q(pk__in=[])
    if addresses:
        match |= Q(subject_email__in=addresses)
    deleted, _ = Delivery.objects.filter(match).delete()
    return deleted
