"""Sign in (throttled per IP and per username), sign out, password change."""

import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.tests.factories import TEST_PASSWORD

LOGIN = reverse("accounts:login")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def attempt(client, username, password, ip="10.0.0.1", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def visible(response) -> str:
    """The page without its per-request CSRF token."""
    return re.sub(r'value="[^"]{32,}"', "", response.content.decode())


@pytest.mark.django_db
def test_sign_in_lands_on_the_dashboard(client, agent_user):
    response = attempt(client, agent_user.username, TEST_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


@pytest.mark.django_db
def test_unknown_user_and_wrong_password_get_identical_answers(client, agent_user):
    unknown = attempt(client, "no-such-user", "whatever")
    wrong = attempt(client, agent_user.username, "whatever", ip="10.0.0.2")
    assert unknown.status_code == wrong.status_code == 200
    assert "Please enter a correct username and password" in visible(wrong)
    assert visible(unknown).replace("no-such-user", "X") == visible(wrong).replace(
        agent_user.username, "X"
    )


@pytest.mark.django_db
def test_username_is_locked_after_too_many_failures_even_with_the_right_password(
    client, agent_user, settings
):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for i in range(3):
        assert attempt(client, agent_user.username, "nope", ip=f"10.0.1.{i}").status_code == 200
    blocked = attempt(client, agent_user.username, TEST_PASSWORD, ip="10.9.9.9")
    assert blocked.status_code == 429
    assert "Too many sign-in attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_throttle_answers_the_same_for_unknown_and_known_usernames(client, agent_user, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    for name in ("ghost", agent_user.username):
        attempt(client, name, "x", ip="10.0.2.1")
        attempt(client, name, "x", ip="10.0.2.2")
    ghost = attempt(client, "ghost", "x", ip="10.0.2.3")
    real = attempt(client, agent_user.username, "x", ip="10.0.2.4")
    assert ghost.status_code == real.status_code == 429
    assert visible(ghost).replace("ghost", "X") == visible(real).replace(agent_user.username, "X")


@pytest.mark.django_db
def test_one_ip_is_throttled_across_usernames(client, agent_user, settings):
    settings.LOGIN_FAILURES_PER_IP = 4
    for i in range(4):
        attempt(client, f"guess{i}", "x", ip="203.0.113.7")
    assert attempt(client, agent_user.username, TEST_PASSWORD, ip="203.0.113.7").status_code == 429
    assert attempt(client, agent_user.username, TEST_PASSWORD, ip="203.0.113.8").status_code == 302


@pytest.mark.django_db
def test_usernames_are_throttled_case_insensitively(client, agent_user, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    attempt(client, agent_user.username.upper(), "x", ip="10.0.3.1")
    attempt(client, agent_user.username, "x", ip="10.0.3.2")
    assert attempt(client, agent_user.username, TEST_PASSWORD, ip="10.0.3.3").status_code == 429


@pytest.mark.django_db
def test_forged_forwarded_for_does_not_escape_the_ip_throttle(client, settings, agent_user):
    settings.LOGIN_FAILURES_PER_IP = 2
    settings.TRUSTED_PROXY_COUNT = 1
    for i in range(2):
        attempt(
            client, f"u{i}", "x", ip="10.0.0.99", HTTP_X_FORWARDED_FOR=f"1.1.1.{i}, 198.51.100.5"
        )
    forged = attempt(
        client,
        agent_user.username,
        TEST_PASSWORD,
        ip="10.0.0.99",
        HTTP_X_FORWARDED_FOR="7.7.7.7, 198.51.100.5",
    )
    assert forged.status_code == 429


@pytest.mark.django_db
def test_success_clears_the_username_count(client, agent_user, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    attempt(client, agent_user.username, "x")
    attempt(client, agent_user.username, "x")
    assert attempt(client, agent_user.username, TEST_PASSWORD).status_code == 302
    client.logout()
    attempt(client, agent_user.username, "x")
    attempt(client, agent_user.username, "x")
    assert attempt(client, agent_user.username, TEST_PASSWORD).status_code == 302


@pytest.mark.django_db
def test_sign_out_is_a_post_and_ends_the_session(client, agent_user):
    client.force_login(agent_user)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard:overview")).status_code == 302


@pytest.mark.django_db
def test_password_change(client, agent_user):
    client.force_login(agent_user)
    url = reverse("accounts:password_change")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    assert bad.status_code == 200 and "is-invalid" in bad.content.decode()
    new = "a much longer new passphrase 42"
    response = client.post(
        url, {"old_password": TEST_PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_change_done")
    agent_user.refresh_from_db()
    assert agent_user.check_password(new)


@pytest.mark.django_db
def test_password_change_needs_sign_in(client):
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 302 and LOGIN in response["Location"]


@pytest.mark.django_db
def test_agents_never_reach_the_admin(client, agent_user):
    client.force_login(agent_user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_admin_sign_in_is_throttled_too(client, admin_role_user, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    admin_login = reverse("admin:login")
    for _ in range(2):
        client.post(admin_login, {"username": admin_role_user.username, "password": "x"})
    response = client.post(
        admin_login, {"username": admin_role_user.username, "password": TEST_PASSWORD}
    )
    assert response.status_code == 200  # the admin's own generic "incorrect" answer
    assert "_auth_user_id" not in client.session
