"""Staff API tokens (issue 11, #19): hashed at rest, expiring, ended by a password change or a
deactivation, issued and revoked by commands; malformed tokens are a 401, never a 500."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from accounts.tests.factories import TEST_PASSWORD

LIST = reverse("staff-api:sessions")
NEW_PASSWORD = "a different horse, battery 42"


def get_with(token: str, **extra):
    client = APIClient()
    return client.get(LIST, HTTP_AUTHORIZATION=f"Token {token}", **extra)


def issue_by_command(username: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", username, *args, stdout=out, stderr=err)
    assert "expires" in err.getvalue()
    return out.getvalue().strip()


@pytest.mark.django_db
def test_token_is_stored_only_as_its_digest(agent_user):
    token = issue_by_command(agent_user.username)
    assert len(token) == 64
    assert get_with(token).status_code == 200

    row = AuthToken.objects.get(user=agent_user)
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    # Nothing stored holds the token: not the knox row (only its first 15 characters, the
    # lookup key), and no plain-text table of DRF's authtoken is left.
    stored = [str(v) for v in AuthToken.objects.values_list("digest", "token_key").get()]
    assert all(token not in value for value in stored)
    assert row.token_key == token[:15]
    assert "authtoken_token" not in connection.introspection.table_names()


@pytest.mark.django_db
def test_token_expires_after_the_configured_days(agent_user):
    token = issue_by_command(agent_user.username, "--days", "7")
    row = AuthToken.objects.get(user=agent_user)
    assert abs(row.expiry - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    _, default = api_token_issue(user=agent_user)
    default_row = AuthToken.objects.exclude(pk=row.pk).get()
    assert abs(default_row.expiry - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    assert get_with(token).status_code == 200 and get_with(default).status_code == 200


@pytest.mark.django_db
def test_expired_token_is_refused_and_deleted(agent_user):
    _, token = api_token_issue(user=agent_user)
    AuthToken.objects.filter(user=agent_user).update(expiry=timezone.now() - timedelta(seconds=1))
    response = get_with(token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.filter(user=agent_user).exists()


def _change_on_the_dashboard(client, user) -> None:
    client.force_login(user)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content[:500]


def _change_in_the_admin(client, user, admin_role_user) -> None:
    client.force_login(admin_role_user)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:500]


def _change_with_set_password(client, user, admin_role_user) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["dashboard", "admin", "set_password"])
def test_password_change_revokes_every_token_of_the_user(
    client, agent_user, admin_role_user, where
):
    _, first = api_token_issue(user=agent_user)
    _, second = api_token_issue(user=agent_user)
    _, others = api_token_issue(user=admin_role_user)
    assert get_with(first).status_code == 200
    if where == "dashboard":
        _change_on_the_dashboard(client, agent_user)
    elif where == "admin":
        _change_in_the_admin(client, agent_user, admin_role_user)
    else:
        _change_with_set_password(client, agent_user, admin_role_user)
    agent_user.refresh_from_db()
    assert agent_user.check_password(NEW_PASSWORD)
    assert get_with(first).status_code == 401
    assert get_with(second).status_code == 401
    assert not AuthToken.objects.filter(user=agent_user).exists()
    assert get_with(others).status_code == 200  # someone else's password did not change


@pytest.mark.django_db
def test_saving_a_user_without_a_password_change_keeps_the_tokens(agent_user):
    _, token = api_token_issue(user=agent_user)
    agent_user.email = "new@example.com"
    agent_user.save()
    agent_user.refresh_from_db()
    agent_user.save(update_fields=["last_login"])
    assert get_with(token).status_code == 200


@pytest.mark.django_db
def test_deactivation_revokes_tokens_and_reactivation_does_not_bring_them_back(agent_user):
    _, token = api_token_issue(user=agent_user)
    agent_user.is_active = False
    agent_user.save(update_fields=["is_active"])
    assert not AuthToken.objects.filter(user=agent_user).exists()
    agent_user.is_active = True
    agent_user.save(update_fields=["is_active"])
    assert get_with(token).status_code == 401


@pytest.mark.django_db
def test_an_unusable_password_revokes_the_tokens(agent_user):
    _, token = api_token_issue(user=agent_user)
    agent_user.set_unusable_password()
    agent_user.save()
    assert get_with(token).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Token " + "ab" * 20 + "\x00",
        "Token \u00ff\u00fe" + "a" * 40,
        "Token " + "z" * 64,
        "Token short",
        "Token",
        "Token a b",
    ],
)
def test_malformed_tokens_are_401_not_500(agent_user, header):
    api_token_issue(user=agent_user)
    response = APIClient().get(LIST, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.django_db
def test_revoke_api_tokens_command_ends_the_users_tokens(agent_user):
    _, token = api_token_issue(user=agent_user)
    out = io.StringIO()
    call_command("revoke_api_tokens", agent_user.username, stdout=out)
    assert "Revoked 1 API token" in out.getvalue()
    assert get_with(token).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody-here"], "No user named 'nobody-here'"),
        (["alex-agent", "--days", "0"], "--days must be between 1 and 3650"),
    ],
)
def test_create_api_token_bad_arguments_are_one_line_errors(agent_user, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_create_api_token_refuses_an_inactive_user(agent_user):
    agent_user.is_active = False
    agent_user.save()
    with pytest.raises(CommandError, match="inactive"):
        call_command("create_api_token", agent_user.username, stdout=io.StringIO())


# --- the migration from DRF's plain-text authtoken table ---------------------------------------

LEGACY_KEY = "0123456789abcdef0123456789abcdef01234567"  # a 40-hex DRF authtoken key


def _migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)


@pytest.fixture
def at_accounts_0001(transactional_db):
    _migrate([("accounts", "0001_initial")])
    yield
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        if "authtoken_token" in connection.introspection.table_names():
            cursor.execute("DROP TABLE authtoken_token")


def test_migration_carries_legacy_keys_over_as_digests_and_drops_the_plain_table(
    at_accounts_0001, make_user
):
    user = make_user("agent", username="legacy-script")
    with connection.cursor() as cursor:
        # DRF authtoken's table, as its migrations left it.
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            "created timestamp with time zone NOT NULL, user_id bigint NOT NULL UNIQUE)"
        )
        cursor.execute(
            'INSERT INTO authtoken_token ("key", created, user_id) VALUES (%s, %s, %s)',
            [LEGACY_KEY, timezone.now(), user.pk],
        )
    _migrate([("accounts", "0002_api_tokens_to_knox")])

    assert "authtoken_token" not in connection.introspection.table_names()
    row = AuthToken.objects.get(user=user)
    assert row.digest == hashlib.sha512(LEGACY_KEY.encode()).hexdigest()
    assert row.expiry > timezone.now() + timedelta(days=89)
    # The script keeps working with the key it already has.
    assert get_with(LEGACY_KEY).status_code == 200
