from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from accounts.roles import GROUP_NAMES
from accounts.services import roles_setup, user_set_role

pytestmark = pytest.mark.django_db


def test_setup_roles_is_idempotent():
    call_command("setup_roles", stdout=StringIO())
    first = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    call_command("setup_roles", stdout=StringIO())
    roles_setup()
    again = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    assert first == again
    assert set(first) == set(GROUP_NAMES.values())
    assert "review_chatsession" in first["QA reviewers"]
    assert "review_chatsession" not in first["Agents"]
    assert "archive_chatsession" in first["Agents"]


def test_setup_roles_repairs_a_tampered_group():
    roles_setup()
    group = Group.objects.get(name="Agents")
    group.permissions.clear()
    roles_setup()
    assert group.permissions.filter(codename="view_chatsession").exists()


@pytest.mark.parametrize(
    ("role", "staff", "superuser"),
    [(Role.ADMIN, True, True), (Role.QA, True, False), (Role.AGENT, False, False)],
)
def test_role_sets_flags_and_single_group(role, staff, superuser):
    user = User.objects.create_user("sam", password="x")
    user_set_role(user=user, role=Role.AGENT)
    user_set_role(user=user, role=role)
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (staff, superuser)
    assert list(user.groups.values_list("name", flat=True)) == [GROUP_NAMES[role]]


def test_unknown_role_rejected():
    user = User.objects.create_user("sam", password="x")
    with pytest.raises(ValueError, match="Unknown role"):
        user_set_role(user=user, role="boss")


def test_createuser_with_password_from_env(monkeypatch):
    monkeypatch.setenv("LEADCHAT_PASSWORD", "a-long-enough-passphrase")
    out = StringIO()
    call_command("createuser", "quinn", "--role", "qa", "--email", "q@example.com", stdout=out)
    user = User.objects.get(username="quinn")
    assert user.check_password("a-long-enough-passphrase")
    assert user.role == Role.QA and user.is_staff and not user.is_superuser
    assert "Created 'quinn' with role qa" in out.getvalue()


def test_createuser_refuses_duplicate_unless_exists_ok(monkeypatch):
    monkeypatch.setenv("LEADCHAT_PASSWORD", "a-long-enough-passphrase")
    call_command("createuser", "quinn", "--role", "qa", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("createuser", "Quinn", "--role", "qa", stdout=StringIO())
    out = StringIO()
    call_command("createuser", "quinn", "--role", "admin", "--exists-ok", stdout=out)
    assert "left unchanged" in out.getvalue()
    assert User.objects.get(username="quinn").role == Role.QA
    call_command("createuser", "quinn", "--role", "admin", "--update-role", stdout=StringIO())
    assert User.objects.get(username="quinn").role == Role.ADMIN


def test_createuser_rejects_weak_password(monkeypatch):
    monkeypatch.setenv("LEADCHAT_PASSWORD", "123")
    with pytest.raises(CommandError, match="Password rejected"):
        call_command("createuser", "quinn", "--role", "qa")
    assert not User.objects.filter(username="quinn").exists()


def test_createuser_without_password_source_fails_clearly(monkeypatch):
    monkeypatch.delenv("LEADCHAT_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", StringIO(""))
    with pytest.raises(CommandError, match="No password"):
        call_command("createuser", "quinn", "--role", "qa")


def test_createuser_rejects_unknown_role():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("createuser", "quinn", "--role", "boss")


def test_createuser_has_no_password_argument():
    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("createuser", "quinn", "--role", "qa", "--password", "x")
