import getpass
import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import Role, User
from accounts.services import user_create, user_set_role, user_validate_identity
from leadchat.commands import LeadchatCommand

PASSWORD_ENV = "LEADCHAT_PASSWORD"  # noqa: S105 - the name of the variable, not a password


class Command(LeadchatCommand):
    help = (
        "Create a staff user with a role. The password comes from the LEADCHAT_PASSWORD "
        "environment variable or an interactive prompt, never from an argument (shell history)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--exists-ok",
            action="store_true",
            help="Exit 0 without changes if the user already exists (for scripts and make run).",
        )
        parser.add_argument(
            "--update-role",
            action="store_true",
            help="If the user exists, set its role instead of failing.",
        )

    def handle(self, *args, username: str, role: str, email: str, **options) -> None:
        username, email = username.strip(), email.strip()
        try:  # before the password prompt: a bad name is refused before anything is typed
            user_validate_identity(username=username, email=email)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        existing = User.objects.filter(username__iexact=username).first()
        if existing is not None:
            if options["update_role"]:
                user_set_role(user=existing, role=role)
                self.stdout.write(f"User {existing.username!r} now has role {role}.")
                return
            if options["exists_ok"]:
                self.stdout.write(f"User {existing.username!r} already exists; left unchanged.")
                return
            raise CommandError(f"A user named {username!r} already exists.")

        password = self._password()
        try:
            user = user_create(username=username, password=password, role=role, email=email)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Created {user.username!r} with role {role}."))

    def _password(self) -> str:
        password = os.environ.get(PASSWORD_ENV, "")
        if password:
            return password
        if not sys.stdin.isatty():
            raise CommandError(
                f"No password: set {PASSWORD_ENV} or run the command in a terminal to be prompted."
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match.")
        if not first:
            raise CommandError("The password must not be empty.")
        return first
