"""A short middleware stack for the two requests that arrive by the hundred per second.

Meta's Messenger webhook (`/channels/messenger/webhook/`, a POST per event) and the open widget's
poll (`GET /api/widget/sessions/{id}/messages/?after=N`, every LIVE_POLL_MS per open chat) need
none of the sessions, sign-in, CSRF or flash messages the dashboard does, nor URL resolution over
the whole URLconf, nor (the poll) DRF's request, negotiation and renderer machinery. Through the
full stack those cost more than the work itself (bench/messenger_intake.py,
bench/idle_widgets.py). HotPathMiddleware, first in MIDDLEWARE, sends exactly these requests
through a chain built from the SAME middleware instances' classes as settings.MIDDLEWARE, minus
the ones listed in SKIPPED (each with the reason it does not apply), around the lean view:

- security headers and the HTTPS redirect (SecurityMiddleware), CORS (django-cors-headers),
  the body limits (RequestBodyLimitMiddleware), the Host check and Content-Length
  (CommonMiddleware), X-Frame-Options, the CSP, no-store, and the JSON 503 while the database
  is away (DatabaseUnavailableMiddleware's process_exception): all still apply, in the same
  order. A middleware added to MIDDLEWARE later is in the lean chain too unless someone adds it
  to SKIPPED.
- the views do the same checks with the same functions as the full path (widget.live,
  widget.channels.messenger.views).

Anything else (another path or method, a poll asking for another format) takes the full stack.
`LEAN_HOT_PATHS = False` switches the shortcut off; the tests compare both ways' answers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

SELF = "leadchat.hotpaths.HotPathMiddleware"
# Middleware the hot paths leave out, and why each cannot matter to them.
SKIPPED = {
    # Serves STATIC_URL files only; neither path is one.
    "whitenoise.middleware.WhiteNoiseMiddleware": "static files only",
    # Neither view reads request.session, request.user or messages (no cookies are set: the
    # full stack adds no Vary: Cookie to these answers either).
    "django.contrib.sessions.middleware.SessionMiddleware": "no session",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "no sign-in",
    "django.contrib.messages.middleware.MessageMiddleware": "no flash messages",
    # The webhook is csrf_exempt (signed by Meta), the poll is a GET (and DRF's views are
    # csrf_exempt too): CSRF never refuses them, and they set no CSRF cookie.
    "django.middleware.csrf.CsrfViewMiddleware": "csrf-exempt / safe method",
}

View = Callable[..., HttpResponse]
T = TypeVar("T")


class HotPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._view_middleware: list[Callable[..., HttpResponse | None]] = []
        self._exception_middleware: list[Callable[..., HttpResponse | None]] = []
        self._chain = self._build_chain()
        self._exact, self._poll = self._routes()

    # --- set-up ---------------------------------------------------------------------------

    def _build_chain(self) -> Callable[[HttpRequest], Any]:
        """The MIDDLEWARE stack minus SKIPPED around the lean view, assembled as Django's own
        BaseHandler.load_middleware does (each layer wrapped by convert_exception_to_response,
        view and exception hooks collected)."""
        if settings.MIDDLEWARE[:1] != [SELF]:
            raise ImproperlyConfigured(f"{SELF} must come first in MIDDLEWARE.")
        handler: Callable[[HttpRequest], Any] = convert_exception_to_response(self._view_call)
        for path in reversed(settings.MIDDLEWARE[1:]):
            if path in SKIPPED:
                continue
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            if hasattr(instance, "process_template_response"):
                raise ImproperlyConfigured(
                    f"{path} has process_template_response, which the hot paths do not run: "
                    f"add it to leadchat.hotpaths.SKIPPED if it cannot matter to them."
                )
            handler = convert_exception_to_response(instance)
        return handler

    def _routes(self) -> tuple[dict[str, View], tuple[str, str, View] | None]:
        """The lean views by path, checked against the URLconf: a hot path answers only a URL
        that the full stack would send to the view it replaces."""
        from widget.api import MessagePostView
        from widget.channels.messenger.views import messenger_webhook
        from widget.live import messages_since_lean

        webhook = reverse("messenger:webhook")
        marker = "HOTPATHSESSIONID"
        poll = reverse("widget:session-messages", kwargs={"session_id": marker})
        for path, expected in ((webhook, messenger_webhook), (poll, MessagePostView)):
            try:
                func = resolve(path).func
            except Resolver404:
                func = None
            if func is not expected and getattr(func, "view_class", None) is not expected:
                raise ImproperlyConfigured(f"{path} no longer resolves to {expected.__name__}.")
        prefix, suffix = poll.split(marker)
        return {webhook: messenger_webhook}, (prefix, suffix, messages_since_lean)

    # --- per request ----------------------------------------------------------------------

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.LEAN_HOT_PATHS:
            route = self._match(request)
            if route is not None:
                request.hot_path_route = route  # type: ignore[attr-defined]
                return self._chain(request)
        return self.get_response(request)

    def _match(self, request: HttpRequest) -> tuple[View, dict[str, str]] | None:
        path = request.path_info
        view = self._exact.get(path)
        if view is not None:
            return view, {}
        if self._poll is None or request.method != "GET":
            return None
        prefix, suffix, poll_view = self._poll
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        session_id = path[len(prefix) : len(path) - len(suffix)]
        # As the URLconf's <str:session_id>: one non-empty segment.
        if not session_id or "/" in session_id:
            return None
        if not _json_only(request):
            return None
        return poll_view, {"session_id": session_id}

    def _view_call(self, request: HttpRequest) -> HttpResponse:
        # BaseHandler._get_response without the URL resolution: view middleware, the view,
        # exception middleware (DatabaseUnavailableMiddleware's JSON 503).
        view, kwargs = request.hot_path_route  # type: ignore[attr-defined]
        for process_view in self._view_middleware:
            early = process_view(request, view, (), kwargs)
            if early is not None:
                return early
        try:
            return view(request, **kwargs)
        except Exception as exc:
            for process_exception in self._exception_middleware:
                answer = process_exception(request, exc)
                if answer is not None:
                    return answer
            raise


def _json_only(request: HttpRequest) -> bool:
    """Whether DRF would answer this poll with its JSON renderer as it is: no `?format=`, and
    an Accept header that is absent or names JSON (or anything) without parameters. Anything
    else (`; indent=4`, text/html, ...) goes the full way, so DRF negotiates (406) as before."""
    if "format" in request.GET:
        return False
    accept: Any = request.META.get("HTTP_ACCEPT", "")
    if not accept:
        return True
    if ";" in accept:
        return False
    ranges = {part.strip() for part in accept.split(",")}
    return bool(ranges & {"*/*", "application/*", "application/json"})


def without_health_check(work: Callable[[], T]) -> T:
    """Run `work` (reads, or writes that are safe to repeat) without the `SELECT 1` that
    CONN_HEALTH_CHECKS sends before a request's first query on a reused connection.

    That check is a database round trip per request, as much as the poll's one real query.
    Instead: try the work on the connection as it is; if the connection turns out dead (the
    server restarted, a proxy dropped it while idle: exactly what the check is for), close it
    and do the work once more on a new one. A database that is really down fails the second try
    too, and the caller's 503 follows as before. Inside a transaction, or with health checks
    off, `work` simply runs.
    """
    if (
        not connection.settings_dict.get("CONN_HEALTH_CHECKS")
        or connection.connection is None
        or connection.in_atomic_block
        # Django's own flag (BaseDatabaseWrapper, 4.1+): the check already ran this request.
        or getattr(connection, "health_check_done", True)
    ):
        return work()
    connection.health_check_done = True  # type: ignore[attr-defined]
    try:
        return work()
    except (OperationalError, InterfaceError) as exc:
        logger.info("Reused database connection was dead (%s); reconnecting once.", exc)
        with contextlib.suppress(Exception):
            connection.close()
        return work()
