"""Issue 11 point 13: no proxy is trusted unless the deployment says so, and identities go into
cache keys only as keyed hashes.

The settings tests import the real settings in a subprocess with production values (DEBUG off),
as `check --deploy` sees them; the request tests go through the running app (live_server) with
the defaults those settings give.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import requests
from django.core.cache import cache
from django.core.cache.backends.base import CacheKeyWarning
from django.test import Client

from accounts.tests.factories import TEST_PASSWORD
from leadchat.http import cache_key_part
from widget.tests.factories import SiteFactory

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://landing.example.com"
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-for-this-test-only-" + "y" * 20,
    "ALLOWED_HOSTS": "leadchat.example.com",
    "PUBLIC_BASE_URL": "https://leadchat.example.com",
}


def production_settings(**extra: str) -> dict:
    """The proxy settings leadchat.settings computes from this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEHIND_", "TRUSTED_"))}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="leadchat.settings", **extra)
    code = (
        "import json; from leadchat import settings as s; print(json.dumps({"
        "'BEHIND_PROXY': s.BEHIND_PROXY, 'TRUSTED_PROXY_COUNT': s.TRUSTED_PROXY_COUNT, "
        "'SECURE_PROXY_SSL_HEADER': getattr(s, 'SECURE_PROXY_SSL_HEADER', None)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_production_settings_trust_no_proxy_by_default():
    assert production_settings() == {
        "BEHIND_PROXY": False,
        "TRUSTED_PROXY_COUNT": 0,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_trusting_a_proxy_takes_explicit_settings():
    assert production_settings(BEHIND_PROXY="true", TRUSTED_PROXY_COUNT="2") == {
        "BEHIND_PROXY": True,
        "TRUSTED_PROXY_COUNT": 2,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    # The two are separate: trusting X-Forwarded-Proto does not trust X-Forwarded-For hops.
    assert production_settings(BEHIND_PROXY="true")["TRUSTED_PROXY_COUNT"] == 0


def test_deploy_checks_stay_clean_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEHIND_", "TRUSTED_"))}
    env.update(PRODUCTION, DJANGO_SETTINGS_MODULE="leadchat.settings")
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by conftest for the browser tests
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db(transaction=True)
def test_forged_forwarded_for_does_not_escape_the_widget_limit_on_the_running_app(
    live_server, settings
):
    """With the defaults, each request claiming a fresh X-Forwarded-For is still one client."""
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 3
    site = SiteFactory(allowed_origins=[ORIGIN])
    statuses = [
        requests.post(
            f"{live_server.url}/api/widget/sessions/",
            json={"site_key": site.public_key, "page_url": f"{ORIGIN}/"},
            headers={"Origin": ORIGIN, "X-Forwarded-For": f"198.51.100.{i}"},
            timeout=10,
        ).status_code
        for i in range(6)
    ]
    assert statuses == [201, 201, 201, 429, 429, 429]


@pytest.mark.django_db
def test_forged_forwarded_proto_does_not_make_a_plain_request_secure(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.mark.django_db
def test_cache_keys_hold_no_raw_address_username_or_session_id(agent_user, settings):
    """Every rate-limit key is a keyed hash: no IP, username or session id readable in the
    cache, and odd characters in what the client sent still make valid memcached keys."""
    site = SiteFactory(allowed_origins=[ORIGIN])
    ip = "2001:db8::7"
    odd_username = "ad min\n\x7f" + "é" * 300
    client = Client(REMOTE_ADDR=ip)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)  # what memcached would refuse
        started = client.post(
            "/api/widget/sessions/",
            {"site_key": site.public_key, "page_url": f"{ORIGIN}/"},
            content_type="application/json",
            HTTP_ORIGIN=ORIGIN,
        ).json()
        said = client.post(
            f"/api/widget/sessions/{started['session_id']}/messages/",
            {"text": "hello"},
            content_type="application/json",
            HTTP_ORIGIN=ORIGIN,
            HTTP_X_VISITOR_TOKEN=started["visitor_token"],
        )
        assert said.status_code == 201
        for username in (agent_user.username, odd_username):
            client.post("/accounts/login/", {"username": username, "password": "wrong"})
        client.post(
            "/accounts/login/", {"username": agent_user.username, "password": TEST_PASSWORD}
        )

    keys = list(cache._cache)  # locmem's store: the keys as written
    assert keys, "the requests above wrote rate-limit counters"
    text = "\n".join(keys)
    for raw in (ip, agent_user.username, started["session_id"], odd_username[:6]):
        assert raw not in text
    assert all(len(key) < 250 and key.isascii() and " " not in key for key in keys)


def test_cache_key_part_is_keyed_with_the_secret_and_separates_kinds(settings):
    first = cache_key_part("ip", "203.0.113.9")
    assert len(first) == 32 and first == cache_key_part("ip", "203.0.113.9")
    assert cache_key_part("user", "203.0.113.9") != first
    settings.SECRET_KEY = "another-secret-key-" + "z" * 40
    assert cache_key_part("ip", "203.0.113.9") != first


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()
