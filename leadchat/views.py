"""Project-level endpoints: health and the root status."""

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        return "unavailable"
    return "ok"


def _status_payload() -> tuple[dict, int]:
    db = database_status()
    healthy = db == "ok"
    payload = {"status": "ok" if healthy else "unavailable", "database": db}
    return payload, 200 if healthy else 503


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    payload, status = _status_payload()
    return JsonResponse(payload, status=status)


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
