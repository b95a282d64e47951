"""The worker's side of the Messenger inbox: claim events, answer them, queue the replies.

A job of the delivery worker (`register_worker_job`, in WidgetConfig.ready()), so the one
`manage.py deliver_webhooks` process serves the outbox and the inbox.

Claims follow the outbox's discipline: one short transaction, SKIP LOCKED on PostgreSQL (a
conditional UPDATE elsewhere), a claim token that fences every later step, and a lease
(MESSENGER_LEASE_SECONDS, longer than the agent's time budget) after which another worker takes
the event over. An event is only claimable when no earlier event of the same person is still
open, so one person's messages are stored and answered in the order they came, whatever the
number of workers.

First, an event of a page no site was routed to yet (every event: the webhook stores them raw)
is routed to the site with that page id, read now; with none, or a switched-off site, the event
is skipped (one automation error per unknown page names the fix).

One event, three steps, each safe to repeat after a crash:
1. one transaction: lock the person's contact row, find or start their session, store their
   message (`message_add`), and note the message on the event. A worker that takes the event
   over sees the note and does not store the message again;
2. outside any transaction: ask the site's agent (`widget.services.agent_answer`: the budget,
   the bulkhead, the fallback, as for the widget);
3. one transaction, fenced by the claim: store the answer (the lead too, whose webhook goes out
   through the outbox), queue each reply as a `messenger` delivery, and mark the event done. A
   worker killed before this commit stored no reply and queued nothing: its successor asks
   again. After it, the reply is in the outbox: never queued twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from sessions_app.delivery import channel_reply_enqueue
from sessions_app.models import (
    AutomationError,
    Channel,
    ChatSession,
    CompletionStatus,
    DeliveryKind,
    MessageRole,
)
from sessions_app.services import automation_error_record, message_add, session_start
from sessions_app.transitions import claim
from widget.channels.messenger import graph
from widget.channels.messenger.models import (
    INBOX_HANDLED,
    INBOX_OPEN,
    InboxKind,
    InboxStatus,
    MessengerContact,
    MessengerInboxEvent,
)
from widget.models import Site
from widget.services import agent_answer, agent_answer_store

logger = logging.getLogger(__name__)

JOB_NAME = "messenger-inbox"
# Meta allows automated replies for this long after the person's last message.
REPLY_WINDOW = timedelta(hours=24)
RETRY_DELAY = timedelta(seconds=5)


def _due(now: datetime) -> Q:
    return Q(status=InboxStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=InboxStatus.PROCESSING, lease_until__lt=now
    )


def _claimable(now: datetime) -> Any:
    earlier_open = MessengerInboxEvent.objects.filter(
        page_id=OuterRef("page_id"),
        psid=OuterRef("psid"),
        id__lt=OuterRef("id"),
        status__in=INBOX_OPEN,
    )
    return MessengerInboxEvent.objects.filter(_due(now)).exclude(Exists(earlier_open))


def inbox_claim(
    *, worker: str, limit: int, now: datetime | None = None
) -> list[MessengerInboxEvent]:
    """Claim up to `limit` due events (at most one per person) in one short transaction."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    values = {
        "status": InboxStatus.PROCESSING,
        "claim_token": token,
        "claimed_by": worker[:100],
        "lease_until": now + timedelta(seconds=settings.MESSENGER_LEASE_SECONDS),
        "attempts": F("attempts") + 1,
    }
    picked = claim(_claimable(now).order_by("id"), due=_due(now), values=values, limit=limit)
    if not picked:
        return []
    return list(
        MessengerInboxEvent.objects.filter(claim_token=token).select_related("site").order_by("id")
    )


def _held(event: MessengerInboxEvent) -> MessengerInboxEvent | None:
    return (
        MessengerInboxEvent.objects.select_for_update(of=("self",))
        .select_related("site")
        .filter(pk=event.pk, status=InboxStatus.PROCESSING, claim_token=event.claim_token)
        .first()
    )


def _finish(event: MessengerInboxEvent, *, status: str, error: str = "") -> None:
    event.status = status
    event.last_error = error[:2000]
    event.processed_at = timezone.now()
    event.claim_token = ""
    event.claimed_by = ""
    event.lease_until = None
    event.save(
        update_fields=[
            "status",
            "last_error",
            "processed_at",
            "claim_token",
            "claimed_by",
            "lease_until",
            "session",
            "message",
        ]
    )


def messenger_inbox_run(worker: str, limit: int) -> int:
    """The worker job: claim a batch of inbox events and handle each; returns how many.

    Between batches, at most every PRUNE_EVERY, it also deletes handled events past their
    retention (`inbox_prune`).
    """
    global _pruned_at
    events = inbox_claim(worker=worker, limit=limit)
    for event in events:
        inbox_event_process_guarded(event)
    if not events and (_pruned_at is None or time.monotonic() - _pruned_at >= PRUNE_EVERY):
        _pruned_at = time.monotonic()
        inbox_prune()
    return len(events)


# The sweep runs when a worker has nothing due, at most this often per process.
PRUNE_EVERY = 600.0
PRUNE_BATCH = 1000
_pruned_at: float | None = None


def inbox_prune(*, now: datetime | None = None, batch_size: int = PRUNE_BATCH) -> int:
    """Delete handled inbox events older than MESSENGER_INBOX_RETENTION_DAYS; returns how many.

    The raw payloads hold PSIDs and what people wrote, which the transcript already keeps: they
    do not outlive their use, which ends once Meta can no longer retry them. Events still to be
    handled are never touched. Batches in short transactions of their own, so a sweep of a big
    backlog holds no long lock.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.MESSENGER_INBOX_RETENTION_DAYS)
    handled = MessengerInboxEvent.objects.filter(
        status__in=INBOX_HANDLED, processed_at__lt=cutoff
    ).order_by()
    removed = 0
    while True:
        ids = list(handled.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted, _ = MessengerInboxEvent.objects.filter(pk__in=ids).delete()
        removed += deleted
        if len(ids) < batch_size:
            break
    if removed:
        logger.info("Messenger inbox: deleted %s handled event(s) past retention.", removed)
    return removed


def inbox_event_process_guarded(event: MessengerInboxEvent) -> None:
    """`inbox_event_process`, with an exception recorded on the event instead of raised.

    The event is tried again a little later; after DELIVERY_MAX_CRASHES claims it fails with an
    automation error (a claim whose worker died counts too: an event that kills workers must
    not kill them all).
    """
    try:
        inbox_event_process(event)
    except Exception as exc:
        logger.exception("Messenger inbox event %s raised; recorded on it.", event.pk)
        _record_crash(event, f"{type(exc).__name__}: {exc}")


def _record_crash(event: MessengerInboxEvent, error: str) -> None:
    with transaction.atomic():
        held = _held(event)
        if held is None:
            return
        if held.attempts >= settings.DELIVERY_MAX_CRASHES:
            _finish(held, status=InboxStatus.FAILED, error=error)
            _failure_report(held, error)
            return
        held.status = InboxStatus.PENDING
        held.last_error = error[:2000]
        held.next_attempt_at = timezone.now() + RETRY_DELAY * held.attempts
        held.claim_token = held.claimed_by = ""
        held.lease_until = None
        held.save(
            update_fields=[
                "status",
                "last_error",
                "next_attempt_at",
                "claim_token",
                "claimed_by",
                "lease_until",
            ]
        )


def _failure_report(event: MessengerInboxEvent, error: str) -> None:
    automation_error_record(
        source=AutomationError.Source.MESSENGER,
        workflow="Messenger inbox",
        node=event.kind,
        message=(
            f"Messenger event {event.mid} could not be handled after {event.attempts} "
            f"attempt(s): {error}. The event is kept in the inbox (status failed)."
        ),
        execution_id=f"messenger:event:{event.pk}",
        details={"event_id": event.pk, "mid": event.mid, "page_id": event.page_id},
        session=event.session,
    )


def inbox_event_process(event: MessengerInboxEvent) -> None:
    """Handle one claimed event (the three steps of the module's docstring)."""
    if event.attempts > settings.DELIVERY_MAX_CRASHES:
        # Claimed again and again without an outcome: its workers died on it.
        with transaction.atomic():
            held = _held(event)
            if held is not None:
                error = "its worker stopped mid-way every time (killed?)"
                _finish(held, status=InboxStatus.FAILED, error=error)
                _failure_report(held, error)
        return
    if event.site_id is None and not _route(event):
        return
    if event.kind == InboxKind.ECHO:
        _echo_process(event)
        return

    # Step 1: store the person's message, once.
    with transaction.atomic():
        held = _held(event)
        if held is None:
            return  # the claim was lost (the lease ran out): another worker has it
        if held.message_id is None:
            contact = _contact_locked(held)
            session = _current_session(contact)
            text, metadata = visitor_text(held)
            held.message = message_add(
                session=session, role=MessageRole.VISITOR, text=text, metadata=metadata
            )
            held.session = session
            contact.session = session
            contact.last_inbound_at = held.event_at or held.received_at
            contact.save(update_fields=["session", "last_inbound_at"])
            held.save(update_fields=["message", "session"])
        text = held.message.text if held.message else ""
        session_id = held.session_id
    answering = (
        ChatSession.objects.select_related("site").filter(pk=session_id).first()
        if session_id
        else None
    )
    if answering is None or answering.is_deleted or held.site is None:
        # Erased or put in the trash meanwhile: nothing to answer.
        with transaction.atomic():
            again = _held(event)
            if again is not None:
                _finish(again, status=InboxStatus.DONE, error="The session is gone; not answered.")
        return

    if answering.held_by_id is not None:
        # An agent holds the conversation (sessions_app.takeover): they answer, not the AI.
        with transaction.atomic():
            again = _held(event)
            if again is not None:
                _finish(again, status=InboxStatus.DONE)
        return

    # Step 2: ask the agent, outside any transaction.
    window_ends = (held.event_at or held.received_at) + REPLY_WINDOW
    if timezone.now() < window_ends:
        graph.typing_on(site=held.site, psid=held.psid)
    session = answering
    answer = agent_answer(session=session, text=text)

    # Step 3: store the answer and queue the replies with the event's end, or not at all.
    with transaction.atomic():
        again = _held(event)
        if again is None:
            logger.warning("Messenger event %s: claim lost while the agent answered.", event.pk)
            return
        if ChatSession.objects.filter(pk=session.pk, held_by__isnull=False).exists():
            # An agent took the conversation over while the AI was thinking: they answer.
            _finish(again, status=InboxStatus.DONE)
            return
        stored = agent_answer_store(session=session, answer=answer)
        for message in stored:
            if message.role != MessageRole.AI or not message.text.strip():
                continue
            channel_reply_enqueue(
                kind=DeliveryKind.MESSENGER,
                event_type=graph.REPLY_EVENT,
                session=session,
                payload=graph.reply_payload(
                    page_id=again.page_id,
                    psid=again.psid,
                    text=message.text,
                    quick_replies=list((message.metadata or {}).get("quick_replies") or []),
                    window_ends_at=window_ends,
                ),
            )
        _finish(again, status=InboxStatus.DONE)


def _route(event: MessengerInboxEvent) -> bool:
    """Give the event its site (by page id, read now); False when it ended skipped instead."""
    with transaction.atomic():
        held = _held(event)
        if held is None:
            return False  # the claim was lost: another worker has it
        site = Site.objects.filter(messenger_page_id=held.page_id).first() if held.page_id else None
        if site is None:
            _finish(
                held,
                status=InboxStatus.SKIPPED,
                error=f"No site has Facebook page id {held.page_id!r}.",
            )
            _unknown_page_report(held.page_id)
            return False
        if not site.is_active:
            _finish(held, status=InboxStatus.SKIPPED, error=f"Site {site.name!r} is switched off.")
            return False
        held.site = site
        held.save(update_fields=["site"])
    event.site = site
    return True


def _unknown_page_report(page_id: str) -> None:
    # One automation error per page, however often Meta sends its events: the execution id makes
    # a repeat a lookup of the stored row (automation_error_record's get_or_create).
    _error, created = automation_error_record(
        source=AutomationError.Source.MESSENGER,
        workflow="Messenger webhook",
        node="unknown page",
        message=(
            f"Meta sent Messenger events for Facebook page {page_id or '(none)'}, which no site "
            "has. Set that page id (and its page access token) in the site's Messenger section, "
            "or unsubscribe the page from the Meta app. Its events are stored and skipped."
        ),
        execution_id=f"messenger:unknown-page:{page_id}",
        details={"page_id": page_id},
    )
    if created:
        logger.warning("Messenger events for unknown page %s", page_id)


def _contact_locked(event: MessengerInboxEvent) -> MessengerContact:
    assert event.site is not None
    MessengerContact.objects.get_or_create(
        page_id=event.page_id, psid=event.psid, defaults={"site": event.site}
    )
    contact = MessengerContact.objects.select_for_update().get(
        page_id=event.page_id, psid=event.psid
    )
    if contact.site_id != event.site.pk:
        # The page moved to another site: its people's next conversations belong there.
        contact.site = event.site
        contact.session = None
        contact.save(update_fields=["site", "session"])
    return contact


def _current_session(contact: MessengerContact) -> ChatSession:
    """The person's open session, or a new one after a completed lead or the idle timeout."""
    idle = timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES)
    current = (
        ChatSession.objects.filter(pk=contact.session_id).first() if contact.session_id else None
    )
    if (
        current is not None
        and not current.is_deleted
        and current.completion_status != CompletionStatus.COMPLETE
        and current.last_activity_at >= timezone.now() - idle
    ):
        return current
    session, _token = session_start(site=contact.site, channel=Channel.MESSENGER)
    return session


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _attachments(message: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    items = message.get("attachments")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        url = _str(_dict(item.get("payload")).get("url"))
        found.append({"type": str(item.get("type") or "file")[:40], "url": url[:2000]})
    return found


def visitor_text(event: MessengerInboxEvent) -> tuple[str, dict[str, Any]]:
    """The transcript's text and metadata for a person's event.

    Attachments are described ("[image]") with their URLs in the metadata, never fetched: the
    URL is Meta's, short-lived, and whatever it points at is not ours to download.
    """
    item = _dict(event.payload)
    details: dict[str, Any] = {"mid": event.mid, "kind": event.kind}
    if event.kind == InboxKind.POSTBACK:
        postback = _dict(item.get("postback"))
        payload = str(postback.get("payload") or "")[:1000]
        details["payload"] = payload
        text = str(postback.get("title") or payload or "(postback)")
    else:
        message = _dict(item.get("message"))
        text = _str(message.get("text"))
        if event.kind == InboxKind.QUICK_REPLY:
            details["payload"] = str(_dict(message.get("quick_reply")).get("payload") or "")[:1000]
            text = text or details["payload"]
        attachments = _attachments(message)
        if attachments:
            details["attachments"] = attachments
            described = ", ".join(a["type"] for a in attachments)
            placeholder = f"[Sent {len(attachments)} attachment(s): {described}]"
            text = f"{text}\n{placeholder}" if text else placeholder
    return text or "(empty message)", {"channel": Channel.MESSENGER, "messenger": details}


def _echo_process(event: MessengerInboxEvent) -> None:
    """A message the page sent: ours (skipped), or a person answering in Meta's inbox."""
    metadata = _str(_dict(_dict(event.payload).get("message")).get("metadata"))
    with transaction.atomic():
        held = _held(event)
        if held is None:
            return
        if metadata.startswith(graph.ECHO_MARK):
            _finish(held, status=InboxStatus.SKIPPED, error="Our own reply's echo.")
            return
        if held.message_id is None:
            contact = _contact_locked(held)
            session = _current_session(contact)
            text, details = visitor_text(held)
            details["kind"] = "echo"
            details["from"] = "meta_inbox"
            held.message = message_add(
                session=session, role=MessageRole.AGENT, text=text, metadata=details
            )
            held.session = session
            if contact.session_id != session.pk:
                contact.session = session
                contact.save(update_fields=["session"])
        _finish(held, status=InboxStatus.DONE)
