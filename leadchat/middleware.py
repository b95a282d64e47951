from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


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
