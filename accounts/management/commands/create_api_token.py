from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError

from accounts.models import User
from accounts.services import api_token_issue
from leadchat.commands import LeadchatCommand


class Command(LeadchatCommand):
    help = (
        "Issue a staff API token for a user (sent as `Authorization: Token <token>`). The token "
        "is printed once on standard output and stored only as a digest; it expires after "
        "--days (default API_TOKEN_TTL_DAYS) and ends when the user's password changes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Days until it expires (1-3650; default {settings.API_TOKEN_TTL_DAYS}).",
        )

    def handle(self, *args, username: str, days: int | None, **options) -> None:
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--days must be between 1 and 3650.")
        user = User.objects.filter(username__iexact=username.strip()).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            token, text = api_token_issue(
                user=user, ttl=timedelta(days=days) if days is not None else None
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # The token alone on stdout (TOKEN=$(manage.py create_api_token alice)); the rest on
        # stderr, so it never ends up in the captured value.
        self.stderr.write(
            f"Token for {user.username!r}, expires {token.expiry:%Y-%m-%d %H:%M %Z}. "
            "It is shown only now; store it in your secret manager."
        )
        self.stdout.write(text)
