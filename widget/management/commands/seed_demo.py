from urllib.parse import urlsplit

from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from leadchat.http_urls import is_http_url
from widget.demo import seed_demo


class Command(LeadchatCommand):
    help = "Create the demo site and a realistic month of demo conversations (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--sessions", type=int, default=240, help="How many sessions (1-100000)."
        )
        parser.add_argument(
            "--days", type=int, default=30, help="Spread over this many days (1-3650)."
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="Also allow this origin (scheme://host:port) to embed the demo. Repeatable.",
        )

    def handle(self, *args, sessions: int, days: int, origin: list[str], **options) -> None:
        if not 1 <= sessions <= 100_000:
            raise CommandError("--sessions must be between 1 and 100000.")
        if not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        for value in origin:
            # An origin: scheme, host and port, no path.
            if not is_http_url(value) or urlsplit(value).path:
                raise CommandError(f"--origin {value!r} is not an origin like http://host:8000.")
        site, created = seed_demo(sessions=sessions, days=days, origins=origin)
        if created:
            self.stdout.write(
                self.style.SUCCESS(f"Seeded {created} demo sessions for site {site.name!r}.")
            )
        else:
            self.stdout.write(f"Demo site {site.name!r} already has sessions; nothing to do.")
