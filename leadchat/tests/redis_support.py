"""The machine's Redis for tests, and a private redis-server for outage tests.

Tests never FLUSHALL or FLUSHDB: the Redis database is shared with other test runs and with the
other xdist workers of this one. Each test gets its own KEY_PREFIX (naming its xdist worker) and
deletes only keys under it; even `cache.clear()` does (`prefix_only_clear`, installed for the whole
run by the root conftest). LEADCHAT_TEST_REDIS_URL chooses the server
(default redis://127.0.0.1:6379/9); where it is unreachable the tests skip, except in CI
(CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from leadchat.testing import free_port

REDIS_URL = os.environ.get("LEADCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unique_key_prefix() -> str:
    """A KEY_PREFIX no other test, xdist worker or parallel run uses."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"leadchat-test-{worker}-{uuid.uuid4().hex[:12]}"


def prefix_only_clear(self) -> None:
    """RedisCache.clear() for tests: delete this cache's own keys, never FLUSHDB the database
    that other workers and runs share (the autouse cache clear would otherwise wipe their keys
    whenever a test points the default cache at Redis)."""
    if not self.key_prefix:
        raise RuntimeError("refusing to clear a shared Redis cache that has no KEY_PREFIX")
    for location in self._servers:
        delete_prefixed(location, self.key_prefix)


def redis_cache_settings(location: str, prefix: str) -> dict:
    """CACHES the way settings.py builds them for a redis:// CACHE_URL, with a private prefix."""
    from leadchat.settings import redis_cache_options

    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
            "OPTIONS": redis_cache_options(),
        }
    }


def require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        message = f"Redis at {REDIS_URL} unreachable ({exc}); set LEADCHAT_TEST_REDIS_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def delete_prefixed(location: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(location)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@contextmanager
def private_redis_server() -> Iterator[tuple[int, Callable[[], None]]]:
    """A redis-server of the test's own on a free port; yields (port, stop)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)

    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    else:
        stop()
        pytest.fail(f"private redis-server on port {port} did not start")
    try:
        yield port, stop
    finally:
        stop()
