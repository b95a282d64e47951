from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.services import sessions_close_idle


class Command(BaseCommand):
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
        if minutes <= 0:
            raise CommandError("--minutes must be a positive number of minutes.")
        closed = sessions_close_idle(idle_for=timedelta(minutes=minutes))
        self.stdout.write(f"Marked {closed} idle session(s) incomplete (idle > {minutes} min).")
