"""Process counters for /metrics (prometheus-client).

Events that happen inside a web process (a cache call that failed, a visitor turned away by the
agent bulkhead, a request answered 503 because the database was away) are counted here. Each
gunicorn worker counts its own; a scrape reaches one worker, so for totals over every worker set
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode: each process writes its counts
to a file there and /metrics adds them up). The figures read from the database (queue depth,
heartbeat, ...) are the same from any process and are built per scrape (leadchat.readiness).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)

CACHE_ERRORS = Counter(
    "leadchat_cache_errors",
    "Cache calls that failed (the app failed open: limits not enforced, origins from the DB).",
    ["operation"],
    registry=REGISTRY,
)
AGENT_BULKHEAD_REJECTED = Counter(
    "leadchat_agent_bulkhead_rejected",
    "Visitor messages answered with the fallback because WIDGET_AGENT_MAX_CONCURRENT agent "
    "calls were already running in this process.",
    registry=REGISTRY,
)
DATABASE_UNAVAILABLE = Counter(
    "leadchat_database_unavailable_responses",
    "Requests answered 503 because the database could not be reached.",
    registry=REGISTRY,
)


def process_metrics_text() -> bytes:
    """The counters above in the Prometheus text format (summed over processes if configured)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
