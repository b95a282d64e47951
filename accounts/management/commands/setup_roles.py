from accounts.services import roles_setup
from leadchat.commands import LeadchatCommand


class Command(LeadchatCommand):
    help = "Create or update the role groups (Admins, QA reviewers, Agents) and their permissions."

    def handle(self, *args, **options) -> None:
        groups = roles_setup()
        for role, group in groups.items():
            self.stdout.write(
                f"{role}: group {group.name!r}, {group.permissions.count()} permissions"
            )
