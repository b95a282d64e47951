from django.core.management.base import CommandError

from accounts.models import User
from accounts.services import api_tokens_revoke
from leadchat.commands import LeadchatCommand


class Command(LeadchatCommand):
    help = "Revoke every staff API token of a user (at once; clients then get 401)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = User.objects.filter(username__iexact=username.strip()).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        count = api_tokens_revoke(user=user)
        self.stdout.write(f"Revoked {count} API token(s) of {user.username!r}.")
