from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app.services import sessions_purge


class Command(LeadchatCommand):
    help = (
        "Remove for good sessions (with their messages) started more than DAYS ago, sessions in "
        "the trash longer than the trash retention, and automation errors older than DAYS."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Retention in days (1-36500): sessions started before that go.",
        )
        parser.add_argument(
            "--trash-older-than",
            type=int,
            default=None,
            metavar="DAYS",
            help="Days a session stays in the trash (default TRASH_RETENTION_DAYS, "
            f"now {settings.TRASH_RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only report what would be removed."
        )

    def handle(self, *args, older_than: int, trash_older_than: int | None, dry_run: bool, **o):
        if not 1 <= older_than <= 36_500:
            raise CommandError("--older-than must be between 1 and 36500 days.")
        if trash_older_than is not None and not 0 <= trash_older_than <= 36_500:
            raise CommandError("--trash-older-than must be between 0 and 36500 days.")
        report = sessions_purge(
            older_than=timedelta(days=older_than),
            trash_older_than=(
                timedelta(days=trash_older_than) if trash_older_than is not None else None
            ),
            dry_run=dry_run,
        )
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(
            f"{verb} {len(report.sessions)} sessions, {report.messages} messages and "
            f"{report.automation_errors} automation errors."
        )
