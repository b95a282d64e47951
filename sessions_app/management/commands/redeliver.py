from datetime import datetime

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leadchat.commands import LeadchatCommand
from sessions_app.delivery import deliveries_failed_since, deliveries_redeliver_failed
from sessions_app.management.endpoints import endpoint_named


def parse_moment(value: str):
    """An ISO date or date-time; a naive one is in the server's time zone (TIME_ZONE)."""
    try:
        moment = parse_datetime(value)
        if moment is None and (day := parse_date(value)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(
            f"--failed-since {value!r} is not a date or date-time; use e.g. 2026-12-01 or "
            "2026-12-01T08:00."
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(LeadchatCommand):
    help = (
        "Send failed lead webhooks again (same event id, so receivers can deduplicate): every "
        "delivery that failed at or after --failed-since, for one endpoint or all."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--failed-since",
            required=True,
            metavar="DATETIME",
            help="ISO date or date-time, server time zone unless it has an offset.",
        )
        parser.add_argument("--endpoint", default=None, help="Endpoint id or name (default all).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be queued; change nothing."
        )

    def handle(self, *args, failed_since: str, endpoint: str | None, dry_run: bool, **options):
        since = parse_moment(failed_since)
        target = endpoint_named(endpoint) if endpoint else None
        if dry_run:
            count = deliveries_failed_since(since=since, endpoint=target).count()
            self.stdout.write(f"{count} failed delivery(ies) would be queued again.")
            return
        queued, refused = deliveries_redeliver_failed(since=since, endpoint=target)
        for line in refused:
            self.stderr.write(f"Refused {line}")
        self.stdout.write(f"Queued {queued} failed delivery(ies) again.")
        if refused and not queued:
            raise CommandError(f"None queued: {len(refused)} refused (see above).")
