from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    QA = "qa", "QA reviewer"
    AGENT = "agent", "Agent"


class User(AbstractUser):
    """A staff member. `role` is the source of truth; groups and flags follow it.

    Change it only through `accounts.services.user_set_role`, which keeps `is_staff`,
    `is_superuser` and the role's group in step.
    """

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)

    class Meta:
        db_table = "accounts_user"

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN
