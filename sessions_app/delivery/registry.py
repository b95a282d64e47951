"""What other apps plug into the delivery worker: senders for their delivery kinds, and jobs.

sessions_app imports no other app (docs/architecture.md), yet one worker process
(`manage.py deliver_webhooks`) serves every channel. So an app that owns a channel registers
here, in its AppConfig.ready():

- a sender for its `DeliveryKind`: the worker's send step calls it for rows of that kind, and a
  row that fails is recorded as an automation error of the sender's source. Claims, leases,
  retries, attempts and the admin stay the outbox's;
- a job: called by the worker loop after each batch of deliveries, with the worker's name and
  batch size, returning how many items it handled (0 when nothing was due). A job claims its
  own rows with the outbox's discipline (short transaction, SKIP LOCKED, a lease).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from sessions_app.delivery.webhooks import SendResult
    from sessions_app.models import Delivery


@dataclass(frozen=True)
class DeliverySender:
    kind: str
    send: Callable[[Delivery, requests.Session], SendResult]
    # AutomationError.Source of the error recorded when a row of this kind fails.
    error_source: str
    # How the automation error names the row ("Messenger reply 4f2c... failed: ...").
    label: str
    # False when the receiver cannot tell a repeat (Meta's Send API has no idempotency key): a
    # send cut short by a killed worker may have arrived, so it is failed for a person to
    # redeliver instead of sent again (a visitor would read the reply twice).
    resend_after_interruption: bool = True


@dataclass(frozen=True)
class WorkerJob:
    name: str
    # (worker name, batch size) -> items handled; 0 when nothing was due.
    run: Callable[[str, int], int]
    # Tidying (the rollups' compaction): what it handles is not work the loop waits on, so it
    # neither counts as processed nor keeps `--once` going (every write leaves some to tidy).
    housekeeping: bool = False


_senders: dict[str, DeliverySender] = {}
_jobs: dict[str, WorkerJob] = {}


def register_delivery_sender(
    *,
    kind: str,
    send: Callable[[Delivery, requests.Session], SendResult],
    error_source: str,
    label: str,
    resend_after_interruption: bool = True,
) -> None:
    """Send rows of `kind` with `send` (idempotent: ready() may run more than once in tests)."""
    _senders[kind] = DeliverySender(
        kind=kind,
        send=send,
        error_source=error_source,
        label=label,
        resend_after_interruption=resend_after_interruption,
    )


def delivery_sender(kind: str) -> DeliverySender | None:
    return _senders.get(kind)


def register_worker_job(
    *, name: str, run: Callable[[str, int], int], housekeeping: bool = False
) -> None:
    """Have every delivery worker call `run(worker_name, batch_size)` in its loop."""
    _jobs[name] = WorkerJob(name=name, run=run, housekeeping=housekeeping)


def worker_jobs() -> list[WorkerJob]:
    return list(_jobs.values())
