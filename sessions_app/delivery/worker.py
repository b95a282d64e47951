"""The delivery worker behind `manage.py deliver_webhooks` (healthchecks' `sendalerts` mould).

Loop: claim a batch of due outbox rows in a short transaction (the outbox), then for each row:
renew its lease and log the attempt (`delivery_send_begin`), send outside any transaction,
record the outcome; sleep a little when nothing is due. Any number of workers may run: each
row's lease is renewed right before its send and outlasts the send's hard deadline, and every
step is fenced by the claim token, so two workers never send one row at the same
time, however long a batch takes.

One row can never take the worker down: any exception while handling it is recorded on that
row (and after DELIVERY_MAX_CRASHES the row fails with an automation error); the loop goes on
with the next row. Only a database that is away stops a batch, and then nothing is lost.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

import requests
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from leadchat import outbound
from sessions_app.delivery import outbox
from sessions_app.delivery.heartbeat import worker_heartbeat_tick
from sessions_app.delivery.registry import delivery_sender, worker_jobs
from sessions_app.delivery.webhooks import (
    SendResult,
    parse_retry_after,
    serialize,
    signature_headers,
    webhook_post,
)
from sessions_app.models import Delivery, DeliveryAttempt, DeliveryKind, WebhookEndpoint
from sessions_app.services import sessions_close_idle

logger = logging.getLogger(__name__)

CLOSE_IDLE_EVERY = timedelta(minutes=1)
# Provider answers that no retry will fix: the message itself is refused.
PERMANENT_EMAIL_STATUSES = {400, 422}


def _database_usable() -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def send_webhook(delivery: Delivery, *, http: requests.Session | None = None) -> SendResult:
    endpoint = delivery.endpoint
    if endpoint is None:
        return SendResult(None, 0, "The delivery has no endpoint.", permanent=True)
    body = serialize(delivery.payload)
    headers = signature_headers(
        secrets=outbox.endpoint_signing_secrets(endpoint),
        event_id=delivery.event_id,
        body=body,
    )
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
        concurrency: int | None = None,
    ) -> None:
        self.name = name or default_worker_name()
        self.batch_size = batch_size or settings.DELIVERY_BATCH_SIZE
        # Sends on the wire at once (threads); 1 sends one row after the other.
        self.concurrency = max(1, concurrency or settings.DELIVERY_CONCURRENCY)
        self._pool: ThreadPoolExecutor | None = None
        self._thread_http = threading.local()
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
        try:
            processed = self._loop(once=once)
        finally:
            self.close()
        return processed

    def _loop(self, *, once: bool) -> int:
        processed = 0
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
                count += self.run_jobs()
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
        if self.concurrency > 1:
            # Enough rows that every thread stays busy while the batch drains.
            limit = max(self.batch_size, 4 * self.concurrency)
            batch = outbox.deliveries_claim(worker=self.name, limit=limit, now=now)
            return self._run_concurrently(batch, now=now)
        batch = outbox.deliveries_claim(worker=self.name, limit=self.batch_size, now=now)
        for index, delivery in enumerate(batch):
            if self.stopping:
                released = outbox.deliveries_release(deliveries=batch[index:])
                self.log(f"Stopping: handed back {released} claimed delivery(ies).")
                return index
            # Per row too, not only between batches: a batch of slow sends can outlast the
            # readiness check's 2 minutes while the worker is alive and working.
            worker_heartbeat_tick(name=self.name)
            self.process_guarded(delivery, now=now)
        return len(batch)

    # --- Concurrent sends -------------------------------------------------------------------
    #
    # With `concurrency` above 1 the worker keeps that many sends on the wire from a pool of
    # threads, and the database work stays on the worker's own thread and connection, in
    # groups: the rows that go out together are begun in one transaction
    # (`outbox.deliveries_send_begin`), the ones the receiver accepted recorded in one
    # (`outbox.deliveries_record_delivered`); any other outcome is recorded row by row as
    # before. What makes the sequential worker safe holds row by row: a row's lease is renewed
    # right before ITS send starts (a thread is free for it: rows are begun only as threads free
    # up), each send is held to its hard deadline, every write is fenced by the claim token,
    # and its attempt row is written before the request goes out. So a slow receiver holds one
    # thread for at most WEBHOOK_TOTAL_TIMEOUT while the others go on, and a killed worker
    # leaves rows whose leases expire and whose open attempts the next worker marks interrupted.
    #
    # Only webhooks and emails go to the threads: they read nothing from the database while
    # sending. A registered sender (Messenger) may, and its replies are never resent after an
    # interruption, so its rows are sent on the worker's thread, one by one, exactly as before.

    def _run_concurrently(self, batch: list[Delivery], *, now: datetime | None) -> int:
        pool = self._threads()
        threaded = (DeliveryKind.WEBHOOK, DeliveryKind.EMAIL)
        waiting = [d for d in batch if d.kind in threaded]
        own_thread = [d for d in batch if d.kind not in threaded]
        in_flight: dict[Future[SendResult], tuple[Delivery, DeliveryAttempt]] = {}
        # Slow start, per receiver: until one of its sends in this batch is accepted (2xx), a
        # receiver gets one send at a time. An endpoint that answers 410 (switched off at once)
        # or is down costs this batch one request, as with one send at a time, not a burst of
        # `concurrency` requests to a receiver that cannot take them.
        accepting: set[str] = set()
        probing: set[str] = set()
        processed = 0
        try:
            while waiting or in_flight:
                if self.stopping and waiting:
                    released = outbox.deliveries_release(deliveries=waiting)
                    self.log(f"Stopping: handed back {released} claimed delivery(ies).")
                    waiting.clear()
                free = self.concurrency - len(in_flight)
                group: list[Delivery] = []
                if waiting and free > 0:
                    later: list[Delivery] = []
                    for delivery in waiting:
                        receiver = _receiver_key(delivery)
                        if len(group) >= free or (
                            receiver not in accepting and receiver in probing
                        ):
                            later.append(delivery)
                            continue
                        if receiver not in accepting:
                            probing.add(receiver)
                        group.append(delivery)
                    waiting = later
                if group:
                    worker_heartbeat_tick(name=self.name)
                    for delivery, attempt in self._begin_group(group, now=now):
                        processed += 1
                        if attempt is None:
                            # Not sent (claim lost, endpoint off): not a probe any more.
                            probing.discard(_receiver_key(delivery))
                            continue
                        future = pool.submit(self._send_threaded, delivery)
                        in_flight[future] = (delivery, attempt)
                if not in_flight:
                    continue
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                finished = [(*in_flight.pop(future), future) for future in done]
                for delivery, _attempt, future in finished:
                    receiver = _receiver_key(delivery)
                    probing.discard(receiver)
                    if future.exception() is None and future.result().ok:
                        accepting.add(receiver)
                self._record_group(finished, now=now)
        finally:
            if in_flight:
                # The database went away mid-batch: let the sends on the wire end (each within
                # its deadline) so no thread outlives the batch; their rows' leases expire and
                # the next claim marks the open attempts interrupted.
                wait(in_flight)
        for index, delivery in enumerate(own_thread):
            if self.stopping:
                released = outbox.deliveries_release(deliveries=own_thread[index:])
                self.log(f"Stopping: handed back {released} claimed delivery(ies).")
                break
            worker_heartbeat_tick(name=self.name)
            self.process_guarded(delivery, now=now)
            processed += 1
        return processed

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix=f"send-{self.name}"[:40]
            )
        return self._pool

    def close(self) -> None:
        """Stop the send threads (after the sends on the wire end)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _send_threaded(self, delivery: Delivery) -> SendResult:
        # One keep-alive pool per thread: requests' Session is not meant to be shared.
        http = getattr(self._thread_http, "session", None)
        if http is None:
            http = self._thread_http.session = outbound.session()
        if delivery.kind == DeliveryKind.EMAIL:
            return send_email(delivery)
        return send_webhook(delivery, http=http)

    def _begin_group(
        self, group: list[Delivery], *, now: datetime | None
    ) -> list[tuple[Delivery, DeliveryAttempt | None]]:
        """Begin the rows about to go out: together, or one by one if that raised, so the row
        that raises is the one whose error is recorded (as `process_guarded` does)."""
        try:
            return outbox.deliveries_send_begin(deliveries=group, worker=self.name, now=now)
        except Exception as exc:
            if isinstance(exc, DatabaseError) and not _database_usable():
                raise
            logger.exception("Worker %s: beginning %s rows raised.", self.name, len(group))
        begun: list[tuple[Delivery, DeliveryAttempt | None]] = []
        for delivery in group:
            try:
                attempt = outbox.delivery_send_begin(delivery=delivery, worker=self.name, now=now)
            except Exception as exc:
                if isinstance(exc, DatabaseError) and not _database_usable():
                    raise
                self._record_crash(delivery, None, exc, now=now)
                attempt = None
            begun.append((delivery, attempt))
        return begun

    def _record_group(
        self,
        finished: list[tuple[Delivery, DeliveryAttempt, Future[SendResult]]],
        *,
        now: datetime | None,
    ) -> None:
        accepted: list[tuple[Delivery, DeliveryAttempt, SendResult, datetime]] = []
        others: list[tuple[Delivery, DeliveryAttempt, SendResult | BaseException]] = []
        for delivery, attempt, future in finished:
            error = future.exception()
            if error is not None:
                others.append((delivery, attempt, error))
                continue
            result = future.result()
            if result.ok:
                at = now + timedelta(milliseconds=result.duration_ms) if now else timezone.now()
                accepted.append((delivery, attempt, result, at))
            else:
                others.append((delivery, attempt, result))
        if accepted:
            try:
                rows = outbox.deliveries_record_delivered(outcomes=accepted)
            except Exception as exc:
                if isinstance(exc, DatabaseError) and not _database_usable():
                    raise
                logger.exception("Worker %s: recording %s sends raised.", self.name, len(accepted))
                others += [(delivery, attempt, result) for delivery, attempt, result, _ in accepted]
            else:
                for (delivery, attempt, result, _), row in zip(accepted, rows, strict=True):
                    self._log_sent(delivery, attempt, result, row)
        for delivery, attempt, outcome in others:
            if isinstance(outcome, BaseException):
                self._record_crash(delivery, attempt, outcome, now=now)
                continue
            try:
                recorded_at = now + timedelta(milliseconds=outcome.duration_ms) if now else None
                row = outbox.delivery_record_attempt(
                    delivery=delivery, attempt=attempt, result=outcome, now=recorded_at
                )
            except Exception as exc:
                if isinstance(exc, DatabaseError) and not _database_usable():
                    raise
                self._record_crash(delivery, attempt, exc, now=now)
                continue
            self._log_sent(delivery, attempt, outcome, row)

    def _record_crash(
        self,
        delivery: Delivery,
        attempt: DeliveryAttempt | None,
        exc: BaseException,
        *,
        now: datetime | None,
    ) -> None:
        logger.error(
            "Worker %s: delivery %s raised; recorded on it.",
            self.name,
            delivery.pk,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        try:
            outbox.delivery_record_crash(
                delivery=delivery, attempt=attempt, error=f"{type(exc).__name__}: {exc}", now=now
            )
        except Exception:
            # Not even that could be written: the lease expires, the next claim counts it.
            logger.exception("Worker %s: could not record the error of %s.", self.name, delivery.pk)

    def _log_sent(
        self,
        delivery: Delivery,
        attempt: DeliveryAttempt,
        result: SendResult,
        row: Delivery | None,
    ) -> None:
        self.sent += 1
        outcome = f"HTTP {result.status_code}" if result.status_code else result.error
        self.log(
            f"{delivery.kind} {delivery.event_type} {delivery.event_id} attempt {attempt.number}: "
            f"{outcome} in {result.duration_ms} ms -> {row.status if row else 'erased'}"
        )

    def run_jobs(self) -> int:
        """Run each registered job once (widget's Messenger inbox, ...); items they handled.

        A job's own rows carry its claims and leases, so an exception here loses nothing: it is
        logged and the loop goes on. A database that is away goes up to the loop, as above.
        """
        handled = 0
        for job in worker_jobs():
            if self.stopping:
                break
            worker_heartbeat_tick(name=self.name)
            try:
                done = job.run(self.name, self.batch_size)
                if not job.housekeeping:
                    handled += done
            except DatabaseError:
                if not _database_usable():
                    raise
                logger.exception("Worker %s: job %s raised.", self.name, job.name)
            except Exception:
                logger.exception("Worker %s: job %s raised.", self.name, job.name)
        return handled

    def process_guarded(self, delivery: Delivery, *, now: datetime | None = None) -> None:
        """`process`, but an exception from this one row is recorded on it, not raised.

        A database that is away is the exception: it concerns every row, so it goes up to the
        loop, which waits for the database (the claim expires, nothing is lost).
        """
        try:
            self.process(delivery, now=now)
        except Exception as exc:
            if isinstance(exc, DatabaseError) and not _database_usable():
                raise
            logger.exception(
                "Worker %s: delivery %s raised; recorded on it.", self.name, delivery.pk
            )
            try:
                outbox.delivery_record_crash(
                    delivery=delivery,
                    attempt=getattr(exc, "attempt", None),
                    error=f"{type(exc).__name__}: {exc}",
                    now=now,
                )
            except Exception:
                # Not even that could be written: the lease expires, the next claim counts it.
                logger.exception(
                    "Worker %s: could not record the error of %s.", self.name, delivery.pk
                )

    def process(
        self, delivery: Delivery, *, now: datetime | None = None, retry: bool = True
    ) -> tuple[Delivery | None, SendResult | None]:
        """Send one claimed row: (row after recording, result), or (None, None) if not sent."""
        attempt = outbox.delivery_send_begin(delivery=delivery, worker=self.name, now=now)
        if attempt is None:
            return None, None
        try:
            result = self._send(delivery)
        except Exception as exc:
            # Raised on our side before or around the request (a corrupt stored secret, a
            # payload that does not serialise): the attempt row says so.
            exc.attempt = attempt  # type: ignore[attr-defined]
            raise
        recorded_at = now + timedelta(milliseconds=result.duration_ms) if now else None
        row = outbox.delivery_record_attempt(
            delivery=delivery, attempt=attempt, result=result, now=recorded_at, retry=retry
        )
        self._log_sent(delivery, attempt, result, row)
        return row, result

    def _send(self, delivery: Delivery) -> SendResult:
        if delivery.kind == DeliveryKind.EMAIL:
            return send_email(delivery)
        if delivery.kind == DeliveryKind.WEBHOOK:
            return send_webhook(delivery, http=self._http)
        registered = delivery_sender(delivery.kind)
        if registered is None:
            # Its app is not installed (or did not register): keep the row, say why.
            return SendResult(None, 0, f"No sender is registered for kind {delivery.kind!r}.")
        return registered.send(delivery, self._http)

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


def _receiver_key(delivery: Delivery) -> str:
    """Who receives the send: its endpoint, or the email provider."""
    return f"endpoint:{delivery.endpoint_id}" if delivery.endpoint_id else str(delivery.kind)


class EndpointUnavailable(Exception):
    """The endpoint is switched off, so a test event cannot go out (the message says which)."""


PING_SENDER = "send_test_webhook"


def webhook_ping_send(*, endpoint: WebhookEndpoint) -> tuple[Delivery, SendResult]:
    """Send one signed `webhook.test` event to `endpoint` now, never retried (send_test_webhook).

    The ping is an outbox row like any other, claimed and sent through the worker's own path,
    so its attempt is logged and the endpoint's health kept the same way.
    """
    delivery = outbox.ping_delivery_enqueue(endpoint=endpoint)
    claimed = outbox.deliveries_claim(worker=PING_SENDER, limit=1, ids=[delivery.pk])
    if not claimed:
        raise EndpointUnavailable(f"Endpoint {endpoint.name!r} is disabled; enable it first.")
    worker = DeliveryWorker(name=PING_SENDER, close_idle_sessions=False, log=lambda _line: None)
    row, result = worker.process(claimed[0], retry=False)
    if row is None or result is None:
        raise EndpointUnavailable(
            f"Endpoint {endpoint.name!r} was switched off meanwhile; try again."
        )
    return row, result
