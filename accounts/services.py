from datetime import timedelta

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from knox.models import AuthToken

from accounts.models import Role, User
from accounts.roles import GROUP_NAMES, GROUP_PERMISSIONS, STAFF_ROLES


def roles_setup() -> dict[str, Group]:
    """Create or update the role groups and their permissions. Safe to run any number of times."""
    groups = {}
    for role, name in GROUP_NAMES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for dotted in GROUP_PERMISSIONS[role]:
            app_label, codename = dotted.split(".", 1)
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)
        groups[role] = group
    return groups


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    """Set a user's role and bring flags and group membership in step with it."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    groups = roles_setup()
    user.role = role
    user.is_staff = role in STAFF_ROLES
    user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    user.groups.remove(*[g for r, g in groups.items() if r != role])
    user.groups.add(groups[role])
    return user


@transaction.atomic
def user_validate_identity(*, username: str, email: str = "") -> None:
    """Refuse a username the admin's own form would refuse ("bad name!": letters, digits and
    @.+-_ only, at most 150) and an email that is not one. Raises ValueError with the reason."""
    if not username:
        raise ValueError("The username must not be empty.")
    max_length = User._meta.get_field("username").max_length or 150
    if len(username) > max_length:
        raise ValueError(f"The username is longer than {max_length} characters.")
    try:
        User.username_validator(username)
    except ValidationError:
        raise ValueError(
            f"The username {username!r} is not valid: use letters, digits and @ . + - _ only."
        ) from None
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValueError(f"The email {email!r} is not a valid email address.") from None


def user_create(
    *, username: str, password: str, role: str, email: str = "", validate: bool = True
) -> User:
    """Create a staff user with a role. Raises ValueError / ValidationError on bad input."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    user_validate_identity(username=username, email=email)
    if User.objects.filter(username__iexact=username).exists():
        raise ValueError(f"A user named {username!r} already exists.")
    user = User(username=username, email=email)
    if validate:
        validate_password(password, user)
    user.set_password(password)
    user.save()
    return user_set_role(user=user, role=role)


def api_token_issue(*, user: User, ttl: timedelta | None = None) -> tuple[AuthToken, str]:
    """A new staff API token for `user`: (the stored row, the token text).

    The text is shown once and never stored: the row keeps its SHA-512 digest. It expires after
    `ttl` (default REST_KNOX["TOKEN_TTL"], from API_TOKEN_TTL_DAYS).
    """
    if not user.is_active:
        raise ValueError(f"User {user.get_username()!r} is inactive; activate it first.")
    issued: tuple[AuthToken, str]  # knox's manager is untyped
    if ttl is None:
        issued = AuthToken.objects.create(user=user)
    else:
        issued = AuthToken.objects.create(user=user, expiry=ttl)
    return issued


def api_tokens_revoke(*, user: User) -> int:
    """Delete every API token of `user`; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted
