"""The shared cache on a real Redis: the machine's (rate limits, sign-in throttle, cached CORS
origins), and a private redis-server that the outage tests stop."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from django.core.cache import cache

from leadchat import cache_guard, metrics
from leadchat.ratelimit import window_counts, window_hit, window_release
from leadchat.tests.redis_support import (
    REDIS_URL,
    private_redis_server,
    redis_cache_settings,
    unique_key_prefix,
)

ROOT = Path(__file__).resolve().parents[2]


def raw_keys(prefix: str) -> set[str]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return set(client.scan_iter(match=f"{prefix}:*"))


def test_the_cache_really_is_redis(redis_cache):
    cache.set("probe", 41)
    assert cache.incr("probe") == 42
    assert any(key.endswith(":probe") for key in raw_keys(redis_cache))


HITS_IN_A_CHILD = """
import django, json, sys
from django.conf import settings
settings.configure(CACHES=json.loads(sys.argv[1]), USE_TZ=True)
django.setup()
from leadchat.ratelimit import window_hit
for _ in range(300):
    window_hit("t:shared", 60)
"""


def test_rate_limit_hits_from_several_processes_are_all_counted(redis_cache):
    caches = redis_cache_settings(REDIS_URL, redis_cache)
    caches["default"]["OPTIONS"] = {}  # a Retry object is not JSON; the defaults do here
    children = [
        subprocess.Popen([sys.executable, "-c", HITS_IN_A_CHILD, json.dumps(caches)], cwd=ROOT)
        for _ in range(3)
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0]

    assert window_counts(["t:shared"]) == {"t:shared": 900}


def test_a_window_counter_never_outlives_its_window(redis_cache):
    """Counting hits right across window boundaries must never leave a counter without an
    expiry: such a key would count forever and lock the client out for good. (Django's
    RedisCache.incr checks EXISTS, then INCRs: a key expiring in between comes back without
    a TTL.)"""
    stop = time.monotonic() + 3.5

    def hammer():
        while time.monotonic() < stop:
            window_hit("t:edge", 1)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    hits_keys = [k for k in raw_keys(redis_cache) if k.endswith("t:edge:hits")]
    assert hits_keys, "the counter is in Redis"
    # -1: no expiry; -2: expired since the last hit (fine).
    assert all(-1 != client.pttl(key) <= 1000 for key in hits_keys)
    time.sleep(1.1)
    assert window_hit("t:edge", 1)[0] == 1  # the next window starts from one


def test_a_released_hit_never_leaves_a_counter_without_expiry(redis_cache):
    """The sign-in throttle gives a reserved attempt back after a right password. Releasing
    across a window's end must not recreate the counter without a TTL (a -1 counting forever)."""
    stop = time.monotonic() + 3.5

    def hammer():
        while time.monotonic() < stop:
            window_hit("t:release", 1)
            window_release("t:release")

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    for key in [k for k in raw_keys(redis_cache) if k.endswith("t:release:hits")]:
        assert -1 != client.pttl(key) <= 1000
    time.sleep(1.1)
    window_release("t:release")  # nothing open: nothing to give back, nothing created
    assert not [k for k in raw_keys(redis_cache) if k.endswith("t:release:hits")]
    assert window_hit("t:release", 60)[0] == 1


ORIGIN = "https://landing.example.com"


def start_session(client, **headers):
    return client.post(
        "/api/widget/sessions/",
        {"site_key": "redis-site", "page_url": f"{ORIGIN}/"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        **headers,
    )


def say(client, body, text):
    return client.post(
        f"/api/widget/sessions/{body['session_id']}/messages/",
        {"text": text},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        HTTP_X_VISITOR_TOKEN=body["visitor_token"],
    )


@pytest.fixture
def redis_site(db):
    from widget.tests.factories import SiteFactory

    return SiteFactory(public_key="redis-site", allowed_origins=[ORIGIN], name="Redis Co")


def test_widget_rate_limit_holds_on_redis(redis_cache, redis_site, client, settings):
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 2

    assert [start_session(client).status_code for _ in range(3)] == [201, 201, 429]
    assert any("widget-session-start" in key for key in raw_keys(redis_cache))


@pytest.mark.django_db
def test_sign_in_throttle_counts_in_redis(redis_cache, client, agent_user, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    login = "/accounts/login/"
    for _ in range(3):
        client.post(login, {"username": agent_user.username, "password": "wrong"})

    from accounts.tests.factories import TEST_PASSWORD

    refused = client.post(login, {"username": agent_user.username, "password": TEST_PASSWORD})
    assert refused.status_code != 302  # not signed in: locked even with the right password
    assert any("login-failures" in key for key in raw_keys(redis_cache))


def test_cached_cors_origins_live_in_redis_and_are_forgotten_on_save(
    redis_cache, redis_site, client
):
    from widget.origins import ACTIVE_ORIGINS_CACHE_KEY

    def preflight(origin):
        return client.options(
            "/api/widget/sessions/", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )

    assert preflight(ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN
    assert any(key.endswith(ACTIVE_ORIGINS_CACHE_KEY) for key in raw_keys(redis_cache))
    redis_site.allowed_origins = ["https://moved.example"]
    redis_site.save()
    assert not any(key.endswith(ACTIVE_ORIGINS_CACHE_KEY) for key in raw_keys(redis_cache))
    assert "Access-Control-Allow-Origin" not in preflight(ORIGIN)


# --- Outage: a redis-server of this test's own, stopped mid-test --------------------------------


@pytest.fixture
def stoppable_redis(settings):
    with private_redis_server() as (port, stop):
        settings.CACHES = redis_cache_settings(f"redis://127.0.0.1:{port}/0", "outage")
        cache.close()
        yield stop


def errors_counted() -> float:
    return sum(
        sample.value
        for family in metrics.CACHE_ERRORS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_lead_capture_keeps_working_while_redis_is_down(
    stoppable_redis, redis_site, client, settings, caplog, monkeypatch
):
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 100
    monkeypatch.setattr(cache_guard, "_last_logged", 0.0)  # the first failure is logged
    assert start_session(client).status_code == 201  # counted in Redis while it is up

    stoppable_redis()
    before = errors_counted()
    with caplog.at_level(logging.ERROR, logger="leadchat.cache_guard"):
        started = time.monotonic()
        response = start_session(client)
        body = response.json()
        reply = say(client, body, "I'm Ana, ana@example.com")
        elapsed = time.monotonic() - started

    assert response.status_code == 201, response.content
    assert reply.status_code == 201, reply.content
    from sessions_app.models import ChatSession

    session = ChatSession.objects.get(public_id=body["session_id"])
    assert session.lead_email == "ana@example.com"
    assert elapsed < 5  # no waiting on the dead server per call
    assert errors_counted() > before
    logged = [r for r in caplog.records if r.name == "leadchat.cache_guard"]
    assert len(logged) == 1  # one line for the outage, not one per request
    assert "failing open" in logged[0].getMessage()


def test_saving_a_site_works_while_redis_is_down(stoppable_redis, redis_site, client):
    stoppable_redis()
    redis_site.name = "Renamed"
    redis_site.save()  # the cached origins' forget fails open

    preflight = client.options(
        "/api/widget/sessions/", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    # Origins come from the database while the cache is away.
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.django_db
def test_readiness_and_metrics_report_the_cache_down(stoppable_redis, client, settings):
    from sessions_app.delivery import worker_heartbeat_beat

    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    worker_heartbeat_beat(name="w1")
    assert client.get("/health/ready").status_code == 200

    stoppable_redis()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["cache"] == "unavailable"
    assert response.json()["reasons"] == ["cache unreachable: rate limits are not enforced"]
    assert client.get("/health").status_code == 200  # liveness: the process still serves
    scrape = client.get("/metrics").content.decode()
    assert "leadchat_cache_up 0.0" in scrape
    assert "leadchat_ready 0.0" in scrape


def test_an_unreachable_redis_fails_the_tests_in_ci_and_skips_them_elsewhere(monkeypatch):
    from leadchat.testing import free_port
    from leadchat.tests import redis_support

    monkeypatch.setattr(redis_support, "REDIS_URL", f"redis://127.0.0.1:{free_port()}/9")
    monkeypatch.setattr(redis_support, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="unreachable"):
        redis_support.require_redis()
    monkeypatch.setattr(redis_support, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        redis_support.require_redis()


# --- Clearing: a shared Redis is never flushed --------------------------------------------------


def test_cache_clear_deletes_its_own_prefix_and_leaves_other_workers_keys(settings):
    """On a private redis-server (so that, were the guard gone, only this test's server would be
    flushed): another xdist worker's key survives our cache.clear(), ours do not."""
    with private_redis_server() as (port, _stop):
        location = f"redis://127.0.0.1:{port}/0"
        raw = redis.Redis.from_url(location, decode_responses=True)
        raw.set("leadchat-test-gw9-other:1:rate", "7")
        raw.set("unprefixed-key", "kept")
        settings.CACHES = redis_cache_settings(location, unique_key_prefix())
        cache.close()
        cache.set("mine", 1)
        assert len(raw.keys("leadchat-test-*")) == 2

        cache.clear()

        assert cache.get("mine") is None
        assert raw.get("leadchat-test-gw9-other:1:rate") == "7"
        assert raw.get("unprefixed-key") == "kept"
        cache.close()


def test_a_cache_url_key_prefix_keeps_two_apps_sharing_one_redis_apart(settings):
    # django-environ hands `?key_prefix=` to Django's Redis backend in lower case, which Django
    # ignores: two leadchat instances on one Redis shared every key, rate limits included.
    from django.core.cache import caches

    from leadchat.settings import cache_from_url
    from leadchat.tests.redis_support import delete_prefixed, require_redis

    require_redis()
    first, second = unique_key_prefix(), unique_key_prefix()
    configs = {
        name: cache_from_url(f"{REDIS_URL}?key_prefix={prefix}&timeout=60")
        for name, prefix in (("first", first), ("second", second))
    }
    assert configs["first"]["KEY_PREFIX"] == first and configs["first"]["TIMEOUT"] == 60
    settings.CACHES = {**settings.CACHES, **configs}
    try:
        caches["first"].set("limit", 1)
        assert caches["second"].get("limit") is None
        assert raw_keys(first) and not raw_keys(second)
    finally:
        delete_prefixed(REDIS_URL, first)
        delete_prefixed(REDIS_URL, second)
