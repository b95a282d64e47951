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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each operation schemathesis fuzzes a node id of its own.

    With pytest 9, schemathesis 4.32's `schema.parametrize()` items all get the function's bare
    node id (pytest now builds it from `originalname`, which schemathesis sets to the function
    name), so failures do not name the operation, and xdist, which schedules by node id, ran one
    of them and silently dropped the rest. The operation goes back in as the id's params, the
    way pytest builds a parametrized test's id (`_id` is pytest's own: no public setter).
    """
    from schemathesis.pytest.plugin import SchemathesisFunction

    for item in items:
        # An item whose id already carries params (a fixed schemathesis) is left alone.
        if isinstance(item, SchemathesisFunction) and not item.nodeid.endswith("]"):
            assert item.parent is not None  # a collected test always has one
            label = item.operation_label
            item._id = item.parent.id.child(item.originalname).with_params(label)
