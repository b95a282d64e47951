"""The public widget API (SPEC 4.2): start a session, post a message, read the transcript.

Open to anonymous visitors, so every request is checked here: the site key (active sites only),
the Origin (the site's allowed origins, or our own widget page), the visitor token (constant-time
compare), JSON only, the body size, the message size and the rate limits. Every refusal is a 4xx
with a readable `error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpRequest
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from leadchat.api import error_response
from leadchat.parsers import StrictJSONParser
from sessions_app.errors import SessionDeleted
from sessions_app.live import visitor_typing_mark
from sessions_app.models import ChatSession
from sessions_app.services import visitor_token_matches
from sessions_app.services import widget_opening_count as opening_count
from widget import selectors, services
from widget.availability import Unavailable, page_origin, widget_unavailable
from widget.i18n import launcher_labels, site_texts
from widget.models import Site
from widget.origins import origin_of_url, own_origins, request_origin_allowed, site_origins
from widget.serializers import (
    MessageIn,
    MessageOut,
    MessagePostOut,
    MessagesSinceIn,
    MessagesSinceOut,
    OpeningIn,
    SessionStartIn,
    SessionStartOut,
    SiteAvailabilityOut,
    TranscriptOut,
)
from widget.throttling import (
    AvailabilityIPThrottle,
    OpeningThrottle,
    SessionMessageThrottle,
    SessionPollThrottle,
    SessionStartThrottle,
    WidgetIPThrottle,
    WidgetPollIPThrottle,
)


class WidgetUnavailable(exceptions.APIException):
    """A refusal of `widget.availability`, with its status, code and message for the owner."""

    def __init__(self, problem: Unavailable) -> None:
        self.status_code = problem.status
        super().__init__(detail=problem.owner_message, code=problem.code)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


COMMON_ERRORS = {
    400: error_response("Invalid input (message in `error`, per-field details in `fields`)."),
    403: error_response(
        "Origin not allowed, site switched off, or visitor token missing or wrong."
    ),
    404: error_response("Unknown site key or session."),
    413: error_response("Request body larger than WIDGET_MAX_BODY_BYTES."),
    415: error_response("Content-Type is not application/json."),
    429: error_response("Rate limit reached; retry after the number of seconds in Retry-After."),
}
VISITOR_TOKEN = OpenApiParameter(
    "X-Visitor-Token",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="The visitor_token returned when the session started.",
)
SESSION_ID = OpenApiParameter(
    "session_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The session_id returned when the session started.",
)


class WidgetJSONParser(StrictJSONParser):
    """Depth and lone surrogates are refused as everywhere; NUL characters are left to the
    serializers (refused in the message text, dropped from the page context)."""

    allow_nul = True


def visitor_session_check(request: HttpRequest, session: ChatSession | None) -> ChatSession:
    """The visitor's session if this request may use it; else the DRF error to answer.

    The session exists (not deleted), its site is active, the Origin may use the site, and the
    X-Visitor-Token matches (constant time). One function for the DRF views and the lean poll
    (widget.live), so both refuse the same requests with the same words.
    """
    if session is None:
        raise exceptions.NotFound("This conversation does not exist (or was deleted).")
    site = session.site
    if site is None or not site.is_active:
        raise exceptions.PermissionDenied("This chat widget is switched off.")
    if not request_origin_allowed(request, site):
        raise exceptions.PermissionDenied("This website is not allowed to use this widget.")
    token = request.headers.get("X-Visitor-Token", "")
    if not token:
        raise exceptions.PermissionDenied("The X-Visitor-Token header is missing.")
    if not visitor_token_matches(session, token):
        raise exceptions.PermissionDenied("The visitor token does not match this session.")
    return session


def poll_cursor_lookup(raw: str) -> int:
    """The cursor the poll's session lookup asks from. Validated later (MessagesSinceIn, a
    400); a bad one here only means "look for anything"."""
    return int(raw) if raw.isdigit() and len(raw) < 19 else 0


def throttled_error(wait: float | None) -> exceptions.Throttled:
    seconds = int(wait or 1) + (0 if wait is None or wait == int(wait) else 1)
    return exceptions.Throttled(
        wait, detail=f"Too many requests. Please wait {seconds} seconds and try again."
    )


def messages_since_body(session: ChatSession, params: Mapping[str, Any]) -> dict[str, Any]:
    """The poll's answer for a session that passed the checks (the DRF view and widget.live).

    Raises ValidationError (400) for a bad `after`."""
    raw = params.get("after", "0")
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 19:
        # Plain digits below 2**63 (what the widget sends): what MessagesSinceIn would accept,
        # without building the serializer on every poll.
        after = int(raw)
    else:
        data = MessagesSinceIn(data=params)
        data.is_valid(raise_exception=True)
        after = data.validated_data["after"]
    # Read with the session by the lookup (selectors.session_for_poll).
    if getattr(session, "has_messages_after", True):
        messages, cursor = selectors.messages_for_visitor_since(session, after)
        shown: Any = MessageOut(messages, many=True).data
    else:
        shown, cursor = [], after  # the usual answer, without the ORM
    return {
        "messages": shown,
        "cursor": cursor,
        "held": session.held_by_id is not None,
        "poll_ms": settings.LIVE_POLL_MS,
    }


class VisitorSession(BasePermission):
    """The session exists, its site is active, the Origin may use it, the token matches.

    Runs before the throttles, so nobody without the token can use up a session's rate limit.
    """

    def lookup(self, session_id: str) -> ChatSession | None:
        return selectors.session_for_widget(session_id)

    def has_permission(self, request: Request, view: APIView) -> bool:
        session = visitor_session_check(request, self.lookup(view.kwargs.get("session_id", "")))
        # DRF types `view` as any APIView; this permission guards WidgetAPIView subclasses.
        view.widget_session = session  # type: ignore[attr-defined]
        return True


class VisitorPollSession(VisitorSession):
    """The same checks for the poll, on the few columns they need (selectors.session_for_poll)."""

    def lookup(self, session_id: str) -> ChatSession | None:
        return selectors.session_for_poll(session_id, after=poll_cursor_lookup(self.request_after))

    def has_permission(self, request: Request, view: APIView) -> bool:
        self.request_after = request.query_params.get("after", "0")
        return super().has_permission(request, view)


class WidgetAPIView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [WidgetJSONParser]
    # Counted before the permission checks (session lookup, Origin, visitor token), so requests
    # that fail them (an unknown session, a guessed token) use up the IP's budget too.
    ip_throttle_classes: list[type[BaseThrottle]] = [WidgetIPThrottle]
    throttle_classes: list = []
    # The session of the URL, set by the VisitorSession permission on the views that use it.
    widget_session: ChatSession

    def initial(self, request: Request, *args, **kwargs) -> None:
        # An unsupported method is a 405 before anything else (DRF would check permissions first).
        method = request.method or ""
        if method.lower() not in self.http_method_names or not hasattr(self, method.lower()):
            raise exceptions.MethodNotAllowed(method)
        # Refuse an oversized body before anything reads it.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = int(settings.WIDGET_MAX_BODY_BYTES)
        if length > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        super().initial(request, *args, **kwargs)

    def check_permissions(self, request: Request) -> None:
        for throttle in (throttle_class() for throttle_class in self.ip_throttle_classes):
            if not throttle.allow_request(request, self):
                self.throttled(request, throttle.wait())
        super().check_permissions(request)

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise throttled_error(wait)


def _user_agent(request: Request) -> str:
    return request.headers.get("User-Agent", "")[:500]


def _site_for_request(request: Request, site_key: str) -> Site:
    """The site a widget write names, refused alike wherever a visitor's page writes (a new
    conversation, an opening): unknown key 404, switched off 403, page origin not allowed 403."""
    site = selectors.site_for_key(site_key)
    if site is None:
        raise exceptions.NotFound("Unknown site key.")
    if not site.is_active:
        raise exceptions.PermissionDenied("This chat widget is switched off.")
    if not request_origin_allowed(request, site):
        raise exceptions.PermissionDenied("This website is not allowed to use this widget.")
    return site


class SessionStartView(WidgetAPIView):
    throttle_classes = [SessionStartThrottle]

    @extend_schema(
        operation_id="widget_session_start",
        summary="Start a widget session",
        description="Opens a conversation for a site; `messages` holds the site's greeting. "
        "Keep `session_id` and `visitor_token` to post messages and resume after a reload.",
        request=SessionStartIn,
        responses={201: SessionStartOut, **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "Start",
                request_only=True,
                value={
                    "site_key": "demo-landing",
                    "page_url": "https://www.example.com/pricing",
                    "referrer": "https://www.google.com/",
                    "utm_source": "google",
                    "utm_medium": "cpc",
                    "utm_campaign": "spring-offer",
                },
            )
        ],
        tags=["widget"],
    )
    def post(self, request: Request) -> Response:
        data = SessionStartIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        site = _site_for_request(request, values["site_key"])
        session, token, messages = services.widget_session_start(
            site=site,
            page_url=values["page_url"],
            referrer=values["referrer"],
            utm={k: values[k] for k in ("utm_source", "utm_medium", "utm_campaign")},
            user_agent=_user_agent(request),
        )
        body = SessionStartOut(
            {
                "session_id": session.public_id,
                "visitor_token": token,
                "completion_status": session.completion_status,
                "messages": messages,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class SiteAvailabilityView(WidgetAPIView):
    """GET: may the widget show on the asking page? The embed script asks before it draws the
    launcher, and prints the refusal's `error` (written for the site owner) as one warning."""

    ip_throttle_classes = [AvailabilityIPThrottle]

    @extend_schema(
        operation_id="widget_site_availability",
        summary="Whether a site's widget can show on the calling page",
        description="Checks the site key, the site's switch and the page's Origin (or, on a "
        "same-origin request, the Referer's) against the site's allowed origins. A refusal's "
        "`error` says what the site owner must fix. Readable from any origin (CORS `*`): it "
        "tells nothing a client could not learn by sending any Origin it likes.",
        responses={200: SiteAvailabilityOut, **{c: COMMON_ERRORS[c] for c in (403, 404, 429)}},
        tags=["widget"],
    )
    def get(self, request: Request, site_key: str) -> Response:
        site = selectors.site_for_key(site_key)
        problem = widget_unavailable(site_key=site_key, site=site, origin=page_origin(request))
        if problem is not None:
            raise WidgetUnavailable(problem)
        assert site is not None  # widget_unavailable refuses a missing site
        with site_texts(site):
            labels = launcher_labels()
        return Response(
            SiteAvailabilityOut(
                {"available": True, "color": site.theme_color, "labels": labels}
            ).data
        )

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # The refusals are the point: a page on a wrong origin must be able to read why, so
        # CORS is open to all here (no credentials, nothing secret), not just to allowed origins.
        response["Access-Control-Allow-Origin"] = "*"
        patch_vary_headers(response, ("Origin", "Referer"))
        return response


class OpeningView(WidgetAPIView):
    """POST: a visitor without a conversation opened the chat (the funnel's first step).

    Opening creates no session; this only counts, per site and hour. Counted after the same
    checks as every widget request (key, switch, Origin) plus the page the chat was opened on,
    which must be one of the site's allowed origins (or this server's own widget page); limited
    per IP per hour, so a script can add a few, not thousands.
    """

    throttle_classes = [OpeningThrottle]

    @extend_schema(
        operation_id="widget_opening",
        summary="Count an opening of the chat",
        request=OpeningIn,
        responses={204: None, **COMMON_ERRORS},
        tags=["widget"],
    )
    def post(self, request: Request) -> Response:
        data = OpeningIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        site = _site_for_request(request, values["site_key"])
        page = origin_of_url(values["page_url"])
        if page not in site_origins(site) and page not in own_origins(request):
            raise exceptions.PermissionDenied(
                "The page the chat was opened on is not on an allowed origin of this site."
            )
        opening_count(site_id=site.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionTranscriptView(WidgetAPIView):
    permission_classes = [VisitorSession]

    @extend_schema(
        operation_id="widget_session_transcript",
        summary="Read a widget session's transcript (to resume it)",
        parameters=[SESSION_ID, VISITOR_TOKEN],
        responses={
            200: TranscriptOut,
            **{code: COMMON_ERRORS[code] for code in (403, 404, 429)},
        },
        tags=["widget"],
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = self.widget_session
        body = TranscriptOut(
            {
                "session_id": session.public_id,
                "completion_status": session.completion_status,
                "lead": {"name": session.lead_name, "email": session.lead_email},
                "messages": selectors.transcript_for_visitor(session),
            }
        ).data
        return Response(body)


class MessagePostView(WidgetAPIView):
    """POST: the visitor writes. GET: the open widget polls for what others wrote since."""

    permission_classes = [VisitorSession]
    throttle_classes = [SessionMessageThrottle]

    def _is_poll(self) -> bool:
        return self.request.method in {"GET", "HEAD"}

    def check_permissions(self, request: Request) -> None:
        # Polls count in a budget of their own (WidgetPollIPThrottle says why).
        if self._is_poll():
            self.ip_throttle_classes = [WidgetPollIPThrottle]
        super().check_permissions(request)

    def get_throttles(self) -> list:
        if self._is_poll():
            return [SessionPollThrottle()]
        return super().get_throttles()

    def get_permissions(self) -> list[BasePermission]:
        if self._is_poll():
            return [VisitorPollSession()]
        return [VisitorSession()]

    @extend_schema(
        operation_id="widget_messages_since",
        summary="Poll for new messages (agent replies, takeover lines)",
        description="What was written since the cursor `after` (the previous answer's "
        "`cursor`); an open widget polls every `poll_ms`. An empty `messages` is the usual "
        "answer.",
        parameters=[SESSION_ID, VISITOR_TOKEN, MessagesSinceIn],
        responses={
            200: MessagesSinceOut,
            **{code: COMMON_ERRORS[code] for code in (400, 403, 404, 429)},
        },
        tags=["widget"],
    )
    def get(self, request: Request, session_id: str) -> Response:
        return Response(messages_since_body(self.widget_session, request.query_params))

    @extend_schema(
        operation_id="widget_message_post",
        summary="Post the visitor's message and get the agent's reply",
        description="The visitor's message is stored before the agent is asked; if the agent "
        "fails or runs out of time, the reply is a polite fallback and nothing is lost.",
        parameters=[SESSION_ID, VISITOR_TOKEN],
        request=MessageIn,
        responses={201: MessagePostOut, **COMMON_ERRORS},
        examples=[OpenApiExample("Message", request_only=True, value={"text": "Hi there!"})],
        tags=["widget"],
    )
    def post(self, request: Request, session_id: str) -> Response:
        data = MessageIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            turn = services.widget_message_post(
                session=self.widget_session, text=data.validated_data["text"]
            )
        except (SessionDeleted, ChatSession.DoesNotExist):
            # Moved to the trash, or erased for good, between the permission check and a write.
            raise exceptions.NotFound(
                "This conversation does not exist (or was deleted)."
            ) from None
        session = turn.session
        body = {
            "messages": MessageOut(turn.messages, many=True).data,
            "session": {
                "completion_status": session.completion_status,
                "lead": {"name": session.lead_name, "email": session.lead_email},
            },
        }
        return Response(body, status=status.HTTP_201_CREATED)


class VisitorTypingView(WidgetAPIView):
    """The visitor is typing in a held session: shown to the agent for a few seconds
    (sessions_app.live). The widget pings at most every TYPING_PING_SECONDS while typing, only
    while an agent holds the session; it counts in the poll budgets, as one more poll."""

    permission_classes = [VisitorSession]
    ip_throttle_classes = [WidgetPollIPThrottle]
    throttle_classes = [SessionPollThrottle]

    @extend_schema(
        operation_id="widget_visitor_typing",
        summary="Say the visitor is typing (shown to the agent holding the session)",
        parameters=[SESSION_ID, VISITOR_TOKEN],
        request=None,
        responses={
            204: None,
            **{code: COMMON_ERRORS[code] for code in (403, 404, 413, 429)},
        },
        tags=["widget"],
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = self.widget_session
        if session.held_by_id is not None:  # nobody watches an AI-run session live
            visitor_typing_mark(session_pk=session.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
