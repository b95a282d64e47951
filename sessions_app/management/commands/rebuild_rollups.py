from datetime import UTC, datetime, time

from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app.rollups import rollups_rebuild


class Command(LeadchatCommand):
    help = (
        "Recompute the stats rollups from the session table (all of them, or from a day on, "
        "for one site). The triggers keep them without this; it repairs or backfills them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--since",
            metavar="YYYY-MM-DD",
            default=None,
            help="Rebuild the buckets from this day on (00:00 UTC); default: all.",
        )
        parser.add_argument(
            "--site", type=int, default=None, metavar="ID", help="Only this site's rollups."
        )

    def handle(self, *args, since: str | None, site: int | None, **options):
        start = None
        if since is not None:
            try:
                day = datetime.strptime(since, "%Y-%m-%d").date()
            except ValueError:
                raise CommandError(f"--since must be a day as YYYY-MM-DD, not {since!r}.") from None
            start = datetime.combine(day, time.min, tzinfo=UTC)
        if site is not None:
            from widget import selectors as widget_selectors

            if not widget_selectors.sites_for_filter().filter(pk=site).exists():
                raise CommandError(f"There is no site {site}.")
        rows = rollups_rebuild(since=start, site=site)
        scope = f" from {since}" if since else ""
        scope += f" for site {site}" if site is not None else ""
        self.stdout.write(f"Rebuilt the stats rollups{scope}: {rows} rows.")
