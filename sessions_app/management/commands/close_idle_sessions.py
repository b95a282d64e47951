from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app.services import sessions_close_idle

# A hundred years: far beyond any real timeout, and far from the ends of Python's calendar, where
# "now minus the idle time" would overflow (timedelta itself stops at 999,999,999 days).
MAX_MINUTES = 100 * 365 * 24 * 60


class Command(LeadchatCommand):
    help = "Mark in-progress sessions idle longer than the timeout, with no lead, as incomplete."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=None,
            help="Idle time in minutes (default: SESSION_IDLE_TIMEOUT_MINUTES).",
        )

    def handle(self, *args, minutes: int | None, **options) -> None:
        if minutes is None:
            minutes = settings.SESSION_IDLE_TIMEOUT_MINUTES
        if not 0 < minutes <= MAX_MINUTES:
            raise CommandError(
                f"--minutes must be a positive number of minutes, at most {MAX_MINUTES} "
                "(100 years)."
            )
        closed = sessions_close_idle(idle_for=timedelta(minutes=minutes))
        self.stdout.write(f"Marked {closed} idle session(s) incomplete (idle > {minutes} min).")
