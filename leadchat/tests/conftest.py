import pytest

from leadchat.tests.redis_support import (
    REDIS_URL,
    delete_prefixed,
    redis_cache_settings,
    require_redis,
    unique_key_prefix,
)


@pytest.fixture
def redis_cache(settings):
    """The default cache on the machine's Redis, under a key prefix of this test's own."""
    from django.core.cache import cache

    require_redis()
    prefix = unique_key_prefix()
    settings.CACHES = redis_cache_settings(REDIS_URL, prefix)
    cache.close()
    yield prefix
    delete_prefixed(REDIS_URL, prefix)
