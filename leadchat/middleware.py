import contextlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control

from leadchat import metrics

logger = logging.getLogger(__name__)


class ContentSecurityPolicyMiddleware:
    """Send the default CSP on every response that did not set its own.

    Views that need another policy (the widget page, whose frame-ancestors is per site) set the
    header themselves; this middleware never overwrites it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response


class NoStoreMiddleware:
    """`Cache-Control: no-store` on the dashboard, the sign-in pages and the API.

    These answers hold leads, transcripts and staff data: neither the browser's cache (a shared
    computer, the back button after sign-out) nor a proxy may keep a copy. The API schema and
    its docs are public and may be cached; static files (the widget's script included) are
    served by whitenoise before this middleware and keep their long cache lifetimes.
    """

    PREFIXES = ("/dashboard/", "/accounts/", "/api/")
    EXEMPT = ("/api/schema/", "/api/docs/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path_info
        if path.startswith(self.PREFIXES) and not path.startswith(self.EXEMPT):
            patch_cache_control(response, no_store=True, private=True)
        return response


# Seconds a client should wait before trying again when the database is away. A PostgreSQL
# restart or a failover takes a few seconds; the widget retries on its own after this long.
DATABASE_RETRY_AFTER_SECONDS = 5
_API_PREFIXES = ("/api/",)


class DatabaseUnavailableMiddleware:
    """Answer 503 + Retry-After, not a 500 traceback page, while the database cannot be reached.

    Only connection-level failures count (OperationalError, InterfaceError: refused, reset,
    "the database system is shutting down"); an IntegrityError or a bad query is a bug and stays
    a 500. API paths (the staff, automation and widget APIs) get the JSON error body every other
    API error has (leadchat.api), so a client can show `error` and retry; pages get a short
    plain-text answer. `/health` answers its own 503.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error(
            "Database unavailable: %s %s answered 503: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            exception,
        )
        metrics.DATABASE_UNAVAILABLE.inc()
        # The broken connection must not be reused by the next request on this thread.
        with contextlib.suppress(Exception):
            connection.close()
        message = "The service is briefly unavailable. Please try again in a few seconds."
        if request.path.startswith(_API_PREFIXES):
            response: HttpResponse = JsonResponse(
                {"error": message, "code": "database_unavailable"}, status=503
            )
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
