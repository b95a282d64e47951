"""Fixtures shared by every app's tests."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM would otherwise refuse to
# run there (SynchronousOnlyOperation). Browser tests only touch the ORM from that thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# CI sets this so that a missing browser fails the run instead of skipping the browser tests.
REQUIRE_BROWSER = os.environ.get("LEADCHAT_REQUIRE_BROWSER", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not Path(CHROMIUM).exists():
        message = (
            f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
        )
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip PostgreSQL-only tests on SQLite (CI runs the suite on both)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL); CI runs it there")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _redis_clear_keeps_to_its_prefix():
    """Redis on 6379 is shared by every xdist worker and every parallel run: a test's
    cache.clear() (the autouse one below, a fixture's) deletes only its own prefix's keys."""
    from django.core.cache.backends.redis import RedisCache

    from leadchat.tests.redis_support import prefix_only_clear

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RedisCache, "clear", prefix_only_clear)
        yield


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_deadlock():
    """A transactional test ends with a TRUNCATE of every table (pytest-django's flush). On
    PostgreSQL a live-server request still in flight from a page that just closed (a widget
    polling for agent replies reads several tables in one statement) can take its locks in the
    other order, and PostgreSQL then kills one of the two: sometimes the flush, which failed the
    test at teardown. The flush is retried; the request, a page nobody reads, does not matter."""
    import time

    from django.db.backends.postgresql.operations import DatabaseOperations
    from django.db.utils import OperationalError

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(5):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if "deadlock detected" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(autouse=True)
def _cache_cleared():
    """Each test starts with an empty cache: rate-limit counters and cached site origins from
    an earlier test (whose rows were rolled back) must not leak into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_user(db):
    """make_user(role="qa", username=...) -> a user with that role, groups and flags in step."""
    from accounts.tests.factories import UserFactory

    def make(role: str = "agent", **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def admin_role_user(make_user):
    return make_user("admin", username="ada-admin")


@pytest.fixture
def qa_user(make_user):
    return make_user("qa", username="quinn-qa")


@pytest.fixture
def agent_user(make_user):
    return make_user("agent", username="alex-agent")
