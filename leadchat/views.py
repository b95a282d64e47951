"""Project-level endpoints: liveness (/health), readiness (/health/ready), metrics, root status."""

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from leadchat import metrics
from leadchat.http import client_ip
from leadchat.readiness import Readiness, database_status, readiness_snapshot

__all__ = ["MetricsView", "database_status", "health", "health_ready", "root"]

logger = logging.getLogger(__name__)


def _status_payload() -> tuple[dict, int]:
    db = database_status()
    healthy = db == "ok"
    payload = {"status": "ok" if healthy else "unavailable", "database": db}
    return payload, 200 if healthy else 503


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: cheap (one SELECT 1), for a load balancer deciding whether to route here."""
    payload, status = _status_payload()
    return JsonResponse(payload, status=status)


@never_cache
@require_GET
def health_ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 with `reasons` whenever leads may not be reaching their automations.

    Open like /health (uptime monitors carry no credentials); it shows counts and ages only.
    """
    snapshot = readiness_snapshot()
    return JsonResponse(snapshot.as_json(), status=200 if snapshot.ready else 503)


class ReadinessCollector:
    """The readiness figures as Prometheus gauges (built per scrape from one snapshot)."""

    def __init__(self, snapshot: Readiness) -> None:
        self.snapshot = snapshot

    def collect(self):
        s = self.snapshot

        def gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
            return GaugeMetricFamily(
                name, documentation, value=float("nan") if value is None else float(value)
            )

        yield gauge("leadchat_ready", "1 when /health/ready answers 200.", s.ready)
        yield gauge("leadchat_database_up", "1 when the database answers.", s.database == "ok")
        yield gauge("leadchat_cache_up", "1 when the cache keeps a write.", s.cache == "ok")
        yield gauge(
            "leadchat_worker_heartbeat_age_seconds",
            "Seconds since the newest delivery worker heartbeat (NaN: none ever).",
            s.worker_heartbeat_age_seconds,
        )
        yield gauge("leadchat_outbox_queue_depth", "Deliveries pending or sending.", s.queue_depth)
        yield gauge("leadchat_outbox_due", "Deliveries due now.", s.due)
        yield gauge(
            "leadchat_outbox_oldest_due_age_seconds",
            "How long the oldest due delivery has been waiting.",
            s.oldest_due_age_seconds,
        )
        yield gauge(
            "leadchat_outbox_stuck_sending",
            "Deliveries claimed by a worker whose lease expired.",
            s.stuck_sending,
        )
        yield gauge(
            "leadchat_outbox_held_for_disabled_endpoints",
            "Pending deliveries waiting for a disabled endpoint.",
            s.held_for_disabled_endpoints,
        )
        yield gauge(
            "leadchat_webhook_endpoints_disabled",
            "Webhook endpoints switched off.",
            s.disabled_endpoints,
        )
        yield gauge(
            "leadchat_last_delivery_timestamp_seconds",
            "Unix time of the last successful delivery (NaN: none yet).",
            s.last_delivered_at.timestamp() if s.last_delivered_at else None,
        )


def _ip_allowed(request: Request) -> bool:
    allowed = settings.METRICS_ALLOWED_IPS
    if not allowed:
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


class MetricsAllowed(BasePermission):
    """A staff user (API token or signed-in session), or a client IP in METRICS_ALLOWED_IPS."""

    message = "Metrics are for staff API tokens or the addresses in METRICS_ALLOWED_IPS."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if _ip_allowed(request):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@extend_schema(exclude=True)
class MetricsView(APIView):
    """Prometheus text format: the readiness figures plus the web processes' counters."""

    permission_classes = [MetricsAllowed]

    def get(self, request: Request) -> HttpResponse:
        registry = CollectorRegistry()
        registry.register(ReadinessCollector(readiness_snapshot()))
        body = generate_latest(registry) + metrics.process_metrics_text()
        response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@never_cache
@require_GET
def root(request: HttpRequest) -> HttpResponse:
    """Status JSON for API clients; browsers go to the dashboard (which asks to sign in)."""
    if not _wants_json(request):
        return redirect(settings.LOGIN_REDIRECT_URL)
    health_payload, status = _status_payload()
    return JsonResponse(
        {"name": "leadchat", "version": settings.VERSION, "health": health_payload}, status=status
    )
