import signal

from django.core.management.base import CommandError
from django.db import DatabaseError

from leadchat.commands import LeadchatCommand
from sessions_app.delivery import DeliveryWorker


class Command(LeadchatCommand):
    help = (
        "Send queued lead webhooks and QA emails from the outbox, retrying failures for about "
        "three days. Run one or more beside the web server; stop with SIGTERM (finishes the "
        "send in progress)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Send everything due now, then exit (cron, tests)."
        )
        parser.add_argument("--batch-size", type=int, default=None, help="Rows claimed at a time.")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="Sends on the wire at once (default DELIVERY_CONCURRENCY; 1: one at a time).",
        )
        parser.add_argument(
            "--poll", type=float, default=None, help="Seconds to sleep when nothing is due."
        )
        parser.add_argument("--name", default=None, help="Worker name in logs and attempt rows.")
        parser.add_argument(
            "--no-close-idle",
            action="store_true",
            help="Do not also mark idle sessions incomplete (once a minute).",
        )

    def handle(self, *args, **options) -> None:
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size <= 0:
            raise CommandError("--batch-size must be a positive number.")
        concurrency = options["concurrency"]
        if concurrency is not None and not 1 <= concurrency <= 256:
            raise CommandError("--concurrency must be between 1 and 256.")
        if options["poll"] is not None and options["poll"] < 0:
            raise CommandError("--poll must not be negative.")
        worker = DeliveryWorker(
            name=options["name"],
            batch_size=batch_size,
            concurrency=concurrency,
            poll_seconds=options["poll"],
            close_idle_sessions=not options["no_close_idle"],
            log=lambda line: self.stdout.write(line),
        )

        def stop(signum: int, frame: object) -> None:
            # Only a flag: the send in progress completes and is recorded, the rest of the
            # batch is handed back, then the loop ends.
            self.stdout.write(f"Got {signal.Signals(signum).name}: stopping after this send.")
            worker.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Delivery worker {worker.name} started.")
        try:
            processed = worker.run(once=options["once"])
        except DatabaseError as exc:
            raise CommandError(f"Database error: {exc}") from None
        self.stdout.write(f"Delivery worker {worker.name} stopped ({processed} processed).")
