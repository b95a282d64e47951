from django.core.management.base import CommandError

from leadchat.commands import LeadchatCommand
from sessions_app.errors import InvalidLead
from sessions_app.services import lead_erase


class Command(LeadchatCommand):
    help = (
        "Erase one person's data for good (GDPR): every session with this lead email or "
        "mentioning it, their messages, related automation errors and other apps' rows "
        "(webhook payloads, emails). Prints what it removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("email", help="The person's email address.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only report what would be removed."
        )

    def handle(self, *args, email: str, dry_run: bool, **options) -> None:
        try:
            report = lead_erase(email=email, dry_run=dry_run)
        except InvalidLead as exc:
            raise CommandError(f"Not an email address: {exc}") from None
        verb = "Would remove" if dry_run else "Removed"
        for public_id in report.sessions:
            self.stdout.write(f"  session {public_id}")
        self.stdout.write(
            f"{verb} {len(report.sessions)} sessions, {report.messages} messages and "
            f"{report.automation_errors} automation errors holding {email.strip()}."
        )
