"""The transactional outbox: every write to webhook deliveries and queued emails.

Rows are written inside the transaction of the change that causes them (a lead capture, a QA
issue), so they commit or roll back with it: a crash after the commit loses nothing, because the
worker (`sessions_app.worker`) finds the row in the database. The network is only ever touched
by the worker, outside any transaction.

Lock order, to keep the worker and the request paths free of deadlocks: delivery row, then
session row, then endpoint row. Request paths hold the session row and only insert deliveries.
"""

import logging
import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
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
from sessions_app.services import automation_error_record
from sessions_app.webhooks import SendResult, lead_payload, ping_payload

logger = logging.getLogger(__name__)

QA_ISSUE_EMAIL_EVENT = "qa.issue_flagged"
# A Retry-After longer than this is treated as this (a receiver asking for a week is broken).
MAX_RETRY_AFTER_SECONDS = 24 * 3600
SETTINGS_ENDPOINT_UNSET = "LEAD_WEBHOOK_URL is not set."


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


# --- Endpoints --------------------------------------------------------------------------------


def endpoint_from_settings() -> WebhookEndpoint | None:
    """The row mirroring LEAD_WEBHOOK_URL (created, updated or switched off to match).

    Writes only when the settings changed, so the common call is one SELECT.
    """
    url = settings.LEAD_WEBHOOK_URL
    endpoint = WebhookEndpoint.objects.filter(from_settings=True).first()
    if not url:
        if endpoint and endpoint.is_active:
            endpoint.is_active = False
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = SETTINGS_ENDPOINT_UNSET
            endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
        return None
    wanted = {
        "auth_header_name": settings.LEAD_WEBHOOK_AUTH_HEADER,
        "auth_header_value": settings.LEAD_WEBHOOK_AUTH_VALUE,
    }
    if settings.LEAD_WEBHOOK_SECRET:
        wanted["secret"] = settings.LEAD_WEBHOOK_SECRET
    if endpoint is None:
        # get_or_create: two first leads at once must not fail on the one-row constraint.
        endpoint, created = WebhookEndpoint.objects.get_or_create(
            from_settings=True, defaults={"name": "LEAD_WEBHOOK_URL", "url": url, **wanted}
        )
        if created:
            return endpoint
    changed = [field for field, value in wanted.items() if getattr(endpoint, field) != value]
    for field in changed:
        setattr(endpoint, field, wanted[field])
    # A new URL, or the variable set again, switches the endpoint back on; a 410 from the same
    # URL keeps it off until an admin turns it on.
    if endpoint.url != url or (
        not endpoint.is_active and endpoint.disabled_reason == SETTINGS_ENDPOINT_UNSET
    ):
        endpoint.url = url
        endpoint.is_active = True
        endpoint.disabled_at = None
        endpoint.disabled_reason = ""
        changed += ["url", "is_active", "disabled_at", "disabled_reason"]
    if changed:
        endpoint.save(update_fields=changed)
    return endpoint


def endpoints_for(*, site_id: int | None, event_type: str) -> list[WebhookEndpoint]:
    """Active endpoints that want this event: the site's own, every-site ones, the global one."""
    endpoint_from_settings()
    candidates = WebhookEndpoint.objects.filter(is_active=True).filter(
        Q(site__isnull=True) | Q(site_id=site_id)
    )
    return [endpoint for endpoint in candidates if endpoint.wants(event_type)]


# --- Enqueue (inside the caller's transaction) ------------------------------------------------


def lead_deliveries_enqueue(*, session: ChatSession) -> list[Delivery]:
    """Queue the `lead.captured` webhook for every endpoint; called inside `lead_capture`.

    The session row is already locked by the caller. Its `delivery_state` becomes `pending`, or
    `disabled` when no endpoint is configured.
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
    state = DeliveryState.PENDING if deliveries else DeliveryState.DISABLED
    if session.delivery_state != state:
        session.delivery_state = state
        session.save(update_fields=["delivery_state"])
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


def session_console_url(session: ChatSession) -> str:
    return f"{settings.PUBLIC_BASE_URL}/admin/sessions_app/chatsession/{session.pk}/change/"


def qa_issue_email_enqueue(*, session: ChatSession, by: User | None, note: str) -> Delivery | None:
    """Queue the QA issue email to QA_NOTIFY_EMAILS; None when nobody is to be told."""
    recipients = [address for address in settings.QA_NOTIFY_EMAILS if address]
    if not recipients:
        logger.info("QA issue on session %s: QA_NOTIFY_EMAILS is empty, no email.", session.pk)
        return None
    context = {
        "session": session,
        "site_name": session.site.name if session.site_id else "",
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


# --- The worker's side: claim, record, release ------------------------------------------------


def _due(now: datetime) -> Q:
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, lease_until__lt=now
    )
    # Rows of a disabled endpoint wait (not lost) until an admin enables it again.
    return due & (Q(kind=DeliveryKind.EMAIL) | Q(endpoint__is_active=True))


def deliveries_claim(
    *,
    worker: str,
    limit: int,
    now: datetime | None = None,
    ids: Iterable[int] | None = None,
) -> list[Delivery]:
    """Claim up to `limit` due rows for `worker` in one short transaction; returns them.

    A claim sets `sending`, a lease and a fresh claim token, and counts the attempt: a worker
    killed mid-send has still made that attempt, so a row that kills workers runs out of tries.
    Rows whose lease expired (their worker died) are due again.
    """
    now = now or timezone.now()
    token = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    candidates = Delivery.objects.filter(_due(now)).order_by("next_attempt_at", "id")
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    claim = {
        "status": DeliveryStatus.SENDING,
        "claim_token": token,
        "claimed_by": worker[:100],
        "lease_until": lease_until,
        "attempts": F("attempts") + 1,
    }
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # PostgreSQL: rows another worker holds are skipped, not waited for. `of=self`
            # keeps the endpoint rows of the join unlocked (or every worker would queue on
            # a shared endpoint).
            picked = list(
                candidates.select_for_update(skip_locked=True, of=("self",)).values_list(
                    "pk", flat=True
                )[:limit]
            )
            if picked:
                Delivery.objects.filter(pk__in=picked).update(**claim)
        else:
            # SQLite: no row locks. The UPDATE re-checks "due" in its WHERE, so a row another
            # worker claimed between our SELECT and this UPDATE no longer matches.
            picked = list(candidates.values_list("pk", flat=True)[:limit])
            if picked:
                Delivery.objects.filter(_due(now), pk__in=picked).update(**claim)
    if not picked:
        return []
    return list(
        Delivery.objects.filter(claim_token=token)
        .select_related("endpoint")
        .order_by("next_attempt_at", "id")
    )


def deliveries_release(*, deliveries: Iterable[Delivery]) -> int:
    """Hand back claimed rows that were not sent (a worker stopping): due again at once."""
    released = 0
    for delivery in deliveries:
        released += Delivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.SENDING, claim_token=delivery.claim_token
        ).update(
            status=DeliveryStatus.PENDING,
            claim_token="",
            claimed_by="",
            lease_until=None,
            attempts=F("attempts") - 1,
        )
    return released


def retry_delay(*, attempts: int, result: SendResult) -> float | None:
    """Seconds until the next try after `attempts` failed tries, or None when out of tries."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    if result.status_code in (429, 503) and result.retry_after is not None:
        return min(max(result.retry_after, 1.0), MAX_RETRY_AFTER_SECONDS)
    base = schedule[attempts - 1]
    # +-20% jitter so a backlog that failed together does not retry in lockstep.
    return base * random.uniform(0.8, 1.2)


def delivery_record_attempt(
    *,
    delivery: Delivery,
    result: SendResult,
    worker: str = "",
    now: datetime | None = None,
    retry: bool = True,
) -> Delivery:
    """Log one attempt and move the delivery on: delivered, retry later, or failed.

    Only the claim holder moves the status. A send whose claim was lost meanwhile (cancelled by
    an admin) is still logged, since it happened.
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        DeliveryAttempt.objects.create(
            delivery=row,
            number=row.attempts,
            attempted_at=now,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error[:2000],
            response_body=result.response_body[:4096],
            worker=worker[:100],
            requested_by_id=row.redelivery_requested_by_id,
        )
        owned = row.status == DeliveryStatus.SENDING and row.claim_token == delivery.claim_token
        if not owned:
            logger.warning(
                "Delivery %s: attempt logged, but %s no longer holds it (now %s).",
                row.pk,
                worker,
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
        ]
        endpoint_gone = row.kind == DeliveryKind.WEBHOOK and result.status_code == 410
        if result.ok:
            row.status = DeliveryStatus.DELIVERED
            row.delivered_at = now
            fields.append("delivered_at")
        elif endpoint_gone or result.permanent or not retry:
            row.status = DeliveryStatus.FAILED
        else:
            delay = retry_delay(attempts=row.attempts, result=result)
            if delay is None:
                row.status = DeliveryStatus.FAILED
            else:
                row.status = DeliveryStatus.PENDING
                row.next_attempt_at = now + timedelta(seconds=delay)
                fields.append("next_attempt_at")
        row.save(update_fields=fields)

        if row.session_id and row.event_type == WebhookEvent.LEAD_CAPTURED:
            session_delivery_state_sync(session_id=row.session_id, now=now)
        if row.endpoint_id:
            _endpoint_note_outcome(row=row, result=result, gone=endpoint_gone, now=now)
        if row.status == DeliveryStatus.FAILED and row.event_type != WebhookEvent.TEST:
            _record_failure(row=row, result=result, gone=endpoint_gone)
    return row


def _endpoint_note_outcome(*, row: Delivery, result: SendResult, gone: bool, now: datetime) -> None:
    endpoints = WebhookEndpoint.objects.filter(pk=row.endpoint_id)
    if result.ok:
        endpoints.update(last_success_at=now)
        return
    reason = (result.error or f"HTTP {result.status_code}")[:500]
    changes: dict = {"last_failure_at": now, "last_failure_reason": reason}
    if gone:
        # 410 Gone: the receiver says this URL is retired. Stop sending there until an admin
        # turns the endpoint back on; its queued rows wait, they are not dropped.
        changes.update(
            is_active=False,
            disabled_at=now,
            disabled_reason=f"Receiver answered 410 Gone to event {row.event_id}.",
        )
    endpoints.update(**changes)


def _record_failure(*, row: Delivery, result: SendResult, gone: bool) -> None:
    if row.kind == DeliveryKind.EMAIL:
        source, what = AutomationError.Source.EMAIL, "QA email"
        workflow = row.event_type
    else:
        source, what = AutomationError.Source.WEBHOOK, "Webhook"
        workflow = row.endpoint.name if row.endpoint else row.event_type
    if gone:
        reason = "the receiver answered 410 Gone; the endpoint is now disabled"
    elif result.permanent:
        reason = "the provider refused it"
    else:
        reason = f"gave up after {row.attempts} attempt(s)"
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


def session_delivery_state_sync(*, session_id: int, now: datetime | None = None) -> str:
    """Recompute `ChatSession.delivery_state` from the session's lead webhook rows.

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
    statuses = set(
        Delivery.objects.filter(
            session_id=session_id,
            kind=DeliveryKind.WEBHOOK,
            event_type=WebhookEvent.LEAD_CAPTURED,
        )
        .exclude(status=DeliveryStatus.CANCELLED)
        .values_list("status", flat=True)
    )
    if not statuses:
        state = DeliveryState.DISABLED
    elif statuses & {DeliveryStatus.PENDING, DeliveryStatus.SENDING}:
        state = DeliveryState.PENDING
    elif DeliveryStatus.FAILED in statuses:
        state = DeliveryState.FAILED
    else:
        state = DeliveryState.DELIVERED
    if session.delivery_state != state:
        session.delivery_state = state
        # The dashboard's changes feed reads updated_at: delivery progress shows live.
        session.updated_at = now
        session.save(update_fields=["delivery_state", "updated_at"])
    return state


# --- People's actions: redeliver, cancel ------------------------------------------------------


def _check_move(current: str, target: str) -> None:
    if target not in DELIVERY_MOVES.get(current, set()):
        raise TransitionNotAllowed(
            f"Cannot move a delivery from {current!r} to {target!r}."
            + (" It is being sent right now." if current == DeliveryStatus.SENDING else "")
        )


def delivery_redeliver(*, delivery: Delivery, by: User | None) -> Delivery:
    """Send the same event (same event id, same payload) again, as soon as a worker is free."""
    now = timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status == DeliveryStatus.SENDING:
            # `sending -> pending` is the worker's own move (a retry); a person waits for it.
            raise TransitionNotAllowed("This delivery is being sent right now; try again shortly.")
        _check_move(row.status, DeliveryStatus.PENDING)
        if row.endpoint_id and not row.endpoint.is_active:
            raise TransitionNotAllowed(
                f"Endpoint {row.endpoint.name!r} is disabled; enable it before redelivering."
            )
        row.status = DeliveryStatus.PENDING
        row.next_attempt_at = now
        row.redelivery_requested_by = by
        row.redelivery_requested_at = now
        row.save(
            update_fields=[
                "status",
                "next_attempt_at",
                "redelivery_requested_by",
                "redelivery_requested_at",
            ]
        )
        if row.session_id and row.event_type == WebhookEvent.LEAD_CAPTURED:
            session_delivery_state_sync(session_id=row.session_id, now=now)
    logger.info("Delivery %s (%s) redelivery asked by %s.", row.pk, row.event_id, by)
    return row


def delivery_cancel(*, delivery: Delivery, by: User | None) -> Delivery:
    """Stop a pending (or in-flight) delivery; a send already on the wire is logged, not undone."""
    now = timezone.now()
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        _check_move(row.status, DeliveryStatus.CANCELLED)
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
        if row.session_id and row.event_type == WebhookEvent.LEAD_CAPTURED:
            session_delivery_state_sync(session_id=row.session_id, now=now)
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
