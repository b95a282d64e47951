"""Issue 11 point 14: parallel password guesses check at most the limit, on every form that
checks a password (sign-in, the dashboard's and the admin's password change).

Real threads, all released at once by a barrier; the number of password checks actually made is
counted on the model's `check_password`, which is slowed down to what a real hasher costs so
that the requests overlap the way they do in production.
"""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections
from django.test import Client

from accounts.models import User
from accounts.tests.factories import TEST_PASSWORD

PARALLEL = 14
LIMIT = 5
NEW_PASSWORD = "a much longer new passphrase 42"


@pytest.fixture
def password_checks(monkeypatch):
    """Counts User.check_password calls (from any thread); each takes 50 ms, like PBKDF2."""
    lock = threading.Lock()
    calls = []
    original = AbstractBaseUser.check_password

    def counted(self, raw_password):
        with lock:
            calls.append(raw_password)
        time.sleep(0.05)
        return original(self, raw_password)

    monkeypatch.setattr(User, "check_password", counted)
    return calls


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = LIMIT
    settings.LOGIN_FAILURES_PER_IP = 1000  # one test client address: only the username counts


def in_parallel(task, count=PARALLEL):
    """Run task(i, barrier) in `count` threads; each calls barrier.wait() right before its
    request. Returns the results in order."""
    barrier = threading.Barrier(count)

    def run(i):
        try:
            return task(i, barrier)
        finally:
            connections.close_all()  # this thread's own connections (PostgreSQL keeps them)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_check_at_most_the_limit_on_the_running_app(
    live_server, agent_user, password_checks, limits
):
    def guess(i, barrier):
        browser = requests.Session()
        page = browser.get(f"{live_server.url}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        barrier.wait()
        return browser.post(
            f"{live_server.url}/accounts/login/",
            data={
                "username": agent_user.username,
                "password": f"wrong-{i}",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{live_server.url}/accounts/login/"},
            timeout=30,
        ).status_code

    statuses = in_parallel(guess)

    assert len(password_checks) <= LIMIT
    assert statuses.count(429) >= PARALLEL - LIMIT
    assert set(statuses) <= {200, 429}


@pytest.mark.django_db(transaction=True)
def test_parallel_old_password_guesses_check_at_most_the_limit(agent_user, password_checks, limits):
    def guess(i, barrier):
        client = Client()
        client.force_login(agent_user)
        barrier.wait()
        return client.post(
            "/accounts/password/",
            {
                "old_password": f"wrong-{i}",
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        ).status_code

    statuses = in_parallel(guess)

    assert len(password_checks) <= LIMIT
    assert statuses.count(429) >= PARALLEL - LIMIT
    agent_user.refresh_from_db()
    assert agent_user.check_password(TEST_PASSWORD)


@pytest.mark.django_db
def test_old_password_check_is_throttled_and_shares_the_sign_in_count(client, agent_user, limits):
    client.force_login(agent_user)
    for i in range(LIMIT - 1):
        client.post("/accounts/password/", {"old_password": f"x{i}", "new_password1": "a"})
    # The last allowed guess spent through the sign-in form: one budget per account.
    Client().post("/accounts/login/", {"username": agent_user.username, "password": "x"})

    right = client.post(
        "/accounts/password/",
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert right.status_code == 429
    assert "Too many attempts" in right.content.decode()
    agent_user.refresh_from_db()
    assert agent_user.check_password(TEST_PASSWORD)


@pytest.mark.django_db
def test_admin_password_change_is_throttled(client, admin_role_user, limits):
    client.force_login(admin_role_user)
    url = "/admin/password_change/"
    assert client.get(url).status_code == 200
    for i in range(LIMIT):
        wrong = client.post(
            url, {"old_password": f"x{i}", "new_password1": "a", "new_password2": "a"}
        )
        assert wrong.status_code == 200

    right = client.post(
        url,
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert right.status_code == 429
    admin_role_user.refresh_from_db()
    assert admin_role_user.check_password(TEST_PASSWORD)


@pytest.mark.django_db
def test_admin_password_change_still_works_and_needs_staff(client, admin_role_user, agent_user):
    client.force_login(agent_user)
    assert client.get("/admin/password_change/").status_code == 302  # agents never reach /admin/
    client.force_login(admin_role_user)
    done = client.post(
        "/admin/password_change/",
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert done.status_code == 302 and done["Location"] == "/admin/password_change/done/"
    admin_role_user.refresh_from_db()
    assert admin_role_user.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_successful_sign_ins_do_not_use_up_the_ip_budget(client, make_user, settings):
    """A right password gives its reserved attempt back: an office behind one address signs in."""
    settings.LOGIN_FAILURES_PER_IP = 3
    users = [make_user("agent", username=f"office{i}") for i in range(6)]
    for user in users:
        response = Client().post(
            "/accounts/login/",
            {"username": user.username, "password": TEST_PASSWORD},
            REMOTE_ADDR="192.0.2.10",
        )
        assert response.status_code == 302
    for i in range(3):
        Client().post(
            "/accounts/login/", {"username": f"guess{i}", "password": "x"}, REMOTE_ADDR="192.0.2.10"
        )
    refused = Client().post(
        "/accounts/login/",
        {"username": users[0].username, "password": TEST_PASSWORD},
        REMOTE_ADDR="192.0.2.10",
    )
    assert refused.status_code == 429
