"""Meta's webhook POST, answered at the WSGI level ahead of Django's request handler.

Meta posts one event per request by the hundred per second (issue 13's target: 500 events/s on a
2-core machine with the inbox write only). Even on the lean middleware chain
(leadchat.hotpaths) half of a webhook's CPU went to Django's handler around the work (the
request object, the request_started / request_finished signals, the middleware layers, the
response's trip back to WSGI), not to the work (bench/messenger_intake.py). This lane does the
work with the same functions as the view (widget.channels.messenger.views), and answers only
the one answer that matters at volume: 200 `EVENT_RECEIVED` for a signed, valid body whose events
are stored.

Everything else goes the full way, so every other answer is Django's own:
- before the body is read: another path or method, `LEAN_HOT_PATHS` off, Messenger not set up,
  a body refused for its size or framing, a Host the site does not serve, a plain-HTTP request
  that SECURE_SSL_REDIRECT sends to HTTPS, a request with an Origin (CORS), PREPEND_WWW or
  DISALLOWED_USER_AGENTS set;
- after it (the body is handed on as it came): a bad signature, malformed JSON or not a
  Messenger body (each counted by the view against the rate limit, as before), a client over
  its rate limit (counted here and once more by the view, which answers the 429), a database
  error (the view retries and answers 200 or the 503 of DatabaseUnavailableMiddleware), any
  other exception (logged; the view's try ends in Django's 500 handling).

The lane's 200 carries the headers the full stack puts on that answer (security headers, CSP,
X-Frame-Options, ...): they are taken from the middleware itself, by running the lean chain
once per scheme (http / https) on an empty request for this path, and kept until a setting
changes. That holds only while the middleware is the set the lane was checked against
(LANE_MIDDLEWARE): with any other set the lane stands aside and logs why once.
`widget/channels/messenger/tests/test_lane.py` compares the lane's answers with the full stack's.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.test.signals import setting_changed
from django.urls import NoReverseMatch, reverse

from leadchat.hotpaths import SELF, SKIPPED, HotPathMiddleware, without_health_check
from leadchat.http import body_refusal
from widget.channels.messenger.intake import inbox_events_store
from widget.channels.messenger.views import (
    RECEIVED,
    TEXT,
    events_parse,
    rate_limit_refusal,
)

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# The middleware (besides leadchat.hotpaths's SKIPPED) whose effect on the lane's 200 is known:
# none refuses a POST that passes the lane's checks, and the headers they add depend on the
# scheme alone (HSTS on https) for a request without an Origin on this path.
LANE_MIDDLEWARE = frozenset(
    {
        "leadchat.hotpaths.HotPathMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "leadchat.http.RequestBodyLimitMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "leadchat.middleware.ContentSecurityPolicyMiddleware",
        "leadchat.middleware.NoStoreMiddleware",
        "leadchat.middleware.DatabaseUnavailableMiddleware",
    }
)
_BODY = RECEIVED.encode()


class MessengerLane:
    """WSGI middleware: `application = MessengerLane(get_wsgi_application())`."""

    def __init__(self, django_app: WSGIApp) -> None:
        self.django_app = django_app
        try:
            self.path: str | None = reverse("messenger:webhook")
        except NoReverseMatch:  # a URLconf without the webhook (bench.plain_urls): no lane
            self.path = None
        self._headers: dict[bool, list[tuple[str, str]]] = {}
        self._unknown_middleware: list[str] | None = None
        self._warned = False
        # Weakly (the default): a lane that is gone takes its receiver with it.
        setting_changed.connect(self._settings_changed)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            self.path is not None
            and environ.get("PATH_INFO") == self.path
            and environ.get("REQUEST_METHOD") == "POST"
        ):
            answered = self._answer(environ)
            if answered is not None:
                start_response("200 OK", answered)
                return [_BODY]
        return self.django_app(environ, start_response)

    def _settings_changed(self, **kwargs: Any) -> None:
        self._headers.clear()
        self._unknown_middleware = None

    def applies(self) -> bool:
        """Whether the lane answers at all under the settings of the moment."""
        if not settings.LEAN_HOT_PATHS or not settings.MESSENGER_APP_SECRET:
            return False
        if settings.MIDDLEWARE[:1] != [SELF]:  # the lean chain gives the lane its headers
            return False
        if settings.PREPEND_WWW or settings.DISALLOWED_USER_AGENTS:
            return False
        if self._unknown_middleware is None:  # worked out once per settings, not per request
            self._unknown_middleware = sorted(
                set(settings.MIDDLEWARE) - LANE_MIDDLEWARE - set(SKIPPED)
            )
        unknown = self._unknown_middleware
        if unknown:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "The Messenger webhook lane stands aside: middleware it was not checked "
                    "against: %s (widget.channels.messenger.lane.LANE_MIDDLEWARE).",
                    ", ".join(unknown),
                )
            return False
        return True

    def _answer(self, environ: dict[str, Any]) -> list[tuple[str, str]] | None:
        """The 200's headers once the events are stored; None: the full stack answers."""
        if not self.applies() or environ.get("HTTP_ORIGIN"):
            return None
        if body_refusal(
            method="POST",
            path=environ["PATH_INFO"],
            content_length=environ.get("CONTENT_LENGTH"),
            transfer_encoding=environ.get("HTTP_TRANSFER_ENCODING"),
        ):
            return None
        request = WSGIRequest(environ)
        try:
            request.get_host()
        except DisallowedHost:
            return None
        secure = request.is_secure()
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        # From here on, whatever the lane leaves to the full stack gets the body as it came.
        environ["wsgi.input"] = io.BytesIO(body)
        data, refusal = events_parse(body=body, signature=environ.get("HTTP_X_HUB_SIGNATURE_256"))
        if refusal is not None:
            return None
        # The signals Django's handler sends around every request: their receivers drop a
        # connection that broke or outlived CONN_MAX_AGE, and arm CONN_HEALTH_CHECKS
        # (without_health_check) for this request.
        request_started.send(sender=self.__class__, environ=environ)
        try:
            if rate_limit_refusal(request) is not None:
                return None
            # Safe to repeat (the full stack does on any failure): the INSERT skips stored mids.
            without_health_check(lambda: inbox_events_store(data=data))
        except (OperationalError, InterfaceError):
            return None
        except Exception:
            logger.exception("Messenger webhook lane failed; the full stack takes the request.")
            return None
        finally:
            request_finished.send(sender=self.__class__)
        return self._headers_for(environ, secure)

    def _headers_for(self, environ: dict[str, Any], secure: bool) -> list[tuple[str, str]]:
        headers = self._headers.get(secure)
        if headers is None:
            headers = self._headers[secure] = self._chain_headers(environ)
        return headers

    def _chain_headers(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
        """The headers the lean chain puts on the view's 200 for a request like this one (its
        environ, empty body): the middleware's own answer, not a copy of its rules."""
        empty = {**environ, "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()}
        request = WSGIRequest(empty)

        def received(_request: WSGIRequest) -> HttpResponse:
            return HttpResponse(RECEIVED, content_type=TEXT)

        request.hot_path_route = (received, {})  # type: ignore[attr-defined]
        chain = HotPathMiddleware(lambda _request: HttpResponse(status=500))
        response = chain._chain(request)
        response["Content-Length"] = str(len(_BODY))
        return list(response.items())
