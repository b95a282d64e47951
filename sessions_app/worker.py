"""The delivery worker behind `manage.py deliver_webhooks` (healthchecks' `sendalerts` mould).

Loop: claim a batch of due outbox rows in a short transaction (sessions_app.outbox), send each
one outside any transaction, record the attempt, repeat; sleep a little when nothing is due.
Any number of workers may run: a claim is exclusive until its lease runs out, and the lease is
far longer than the longest send, so two workers never send one row at the same time.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import requests
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from sessions_app import outbox
from sessions_app.heartbeat import worker_heartbeat_tick
from sessions_app.models import Delivery, DeliveryKind
from sessions_app.services import sessions_close_idle
from sessions_app.webhooks import (
    SendResult,
    parse_retry_after,
    serialize,
    signature_headers,
    webhook_post,
)

logger = logging.getLogger(__name__)

CLOSE_IDLE_EVERY = timedelta(minutes=1)
# Provider answers that no retry will fix: the message itself is refused.
PERMANENT_EMAIL_STATUSES = {400, 422}


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def send_webhook(delivery: Delivery, *, http: requests.Session | None = None) -> SendResult:
    endpoint = delivery.endpoint
    if endpoint is None:
        return SendResult(None, 0, "The delivery has no endpoint.", permanent=True)
    body = serialize(delivery.payload)
    headers = signature_headers(secret=endpoint.secret, event_id=delivery.event_id, body=body)
    if endpoint.auth_header_name:
        headers[endpoint.auth_header_name] = endpoint.auth_header_value
    return webhook_post(url=endpoint.url, body=body, headers=headers, session=http)


def send_email(delivery: Delivery) -> SendResult:
    """Send a queued email through EMAIL_BACKEND (Resend via anymail in production)."""
    payload = delivery.payload
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    message = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["text"],
        from_email=payload.get("from") or settings.DEFAULT_FROM_EMAIL,
        to=payload["to"],
        connection=get_connection(),
    )
    if payload.get("html"):
        message.attach_alternative(payload["html"], "text/html")
    # Same key on every retry: Resend sends a key once, whatever happened to our earlier tries.
    message.idempotency_key = delivery.event_id  # type: ignore[attr-defined]
    try:
        message.send()
    except AnymailRequestsAPIError as exc:
        response = getattr(exc, "response", None)
        code = exc.status_code
        return SendResult(
            status_code=code,
            duration_ms=elapsed(),
            error=str(exc).splitlines()[0][:1000] if str(exc) else f"HTTP {code}",
            response_body=(response.text[:4096] if response is not None else ""),
            retry_after=parse_retry_after(
                response.headers.get("Retry-After") if response is not None else None
            ),
            permanent=code in PERMANENT_EMAIL_STATUSES,
        )
    except AnymailError as exc:
        # Raised before any request (an address anymail cannot use): retrying cannot help.
        return SendResult(None, elapsed(), f"{type(exc).__name__}: {exc}"[:1000], permanent=True)
    except Exception as exc:  # SMTP and other backends: keep the row, retry on the schedule.
        logger.warning("Email %s failed: %s", delivery.event_id, exc)
        return SendResult(None, elapsed(), f"{type(exc).__name__}: {exc}"[:1000])
    return SendResult(200, elapsed())


class DeliveryWorker:
    def __init__(
        self,
        *,
        name: str | None = None,
        batch_size: int | None = None,
        poll_seconds: float | None = None,
        close_idle_sessions: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name or default_worker_name()
        self.batch_size = batch_size or settings.DELIVERY_BATCH_SIZE
        self.poll_seconds = settings.DELIVERY_POLL_SECONDS if poll_seconds is None else poll_seconds
        self.close_idle_sessions = close_idle_sessions
        self.log = log or logger.info
        self._stop = threading.Event()
        self._http = requests.Session()
        self._next_close_idle: datetime | None = None
        self.sent = 0

    def request_stop(self) -> None:
        """Ask the loop to stop after the send in progress (SIGTERM, SIGINT)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, once: bool = False) -> int:
        """Loop until stopped; with `once`, until nothing is due. Returns rows processed."""
        processed = 0
        try:
            # Mirror LEAD_WEBHOOK_URL into its endpoint row now, not on the first lead.
            outbox.endpoint_from_settings()
        except DatabaseError as exc:
            logger.warning("Worker %s: database not ready: %s", self.name, exc)
        while not self.stopping:
            try:
                if not connection.in_atomic_block:
                    # Drop a connection the database closed (a restart) or that outlived
                    # CONN_MAX_AGE, as Django does between requests. (Never inside a
                    # transaction, e.g. a test's: it would end it.)
                    close_old_connections()
                self._maybe_close_idle()
                worker_heartbeat_tick(name=self.name, processed=processed)  # /health/ready
                count = self.run_batch()
            except DatabaseError as exc:
                # The database restarted or is briefly away: nothing is lost (rows stay in the
                # outbox, claims expire), so wait and try again with a fresh connection.
                logger.warning("Worker %s: database error, retrying: %s", self.name, exc)
                connection.close()
                count = 0
                if once:
                    raise
            processed += count
            if count:
                continue
            if once:
                break
            self._stop.wait(self.poll_seconds)
        return processed

    def run_batch(self, *, now: datetime | None = None) -> int:
        """Claim one batch and send it. `now` lets tests drive the retry clock."""
        batch = outbox.deliveries_claim(worker=self.name, limit=self.batch_size, now=now)
        for index, delivery in enumerate(batch):
            if self.stopping:
                released = outbox.deliveries_release(deliveries=batch[index:])
                self.log(f"Stopping: handed back {released} claimed delivery(ies).")
                return index
            self.process(delivery, now=now)
        return len(batch)

    def process(self, delivery: Delivery, *, now: datetime | None = None, retry: bool = True):
        if delivery.kind == DeliveryKind.EMAIL:
            result = send_email(delivery)
        else:
            result = send_webhook(delivery, http=self._http)
        recorded_at = now + timedelta(milliseconds=result.duration_ms) if now else None
        row = outbox.delivery_record_attempt(
            delivery=delivery, result=result, worker=self.name, now=recorded_at, retry=retry
        )
        self.sent += 1
        outcome = f"HTTP {result.status_code}" if result.status_code else result.error
        self.log(
            f"{delivery.kind} {delivery.event_type} {delivery.event_id} attempt {row.attempts}: "
            f"{outcome} in {result.duration_ms} ms -> {row.status}"
        )
        return row, result

    def _maybe_close_idle(self) -> None:
        # The worker is always running, so it doubles as the idle-session sweeper: cron for
        # close_idle_sessions becomes optional.
        if not self.close_idle_sessions:
            return
        now = timezone.now()
        if self._next_close_idle and now < self._next_close_idle:
            return
        self._next_close_idle = now + CLOSE_IDLE_EVERY
        closed = sessions_close_idle()
        if closed:
            self.log(f"Marked {closed} idle session(s) incomplete.")
