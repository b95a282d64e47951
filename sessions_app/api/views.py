"""Staff API views: short, one per operation (STYLE.md). Reads via selectors, writes via services.

Token authentication (knox, accounts.tokens: hashed, expiring tokens) comes first so an anonymous
script gets 401 with `WWW-Authenticate: Token`;
the dashboard's browser session is accepted too (with CSRF on writes). Every view names the
permission it needs (sessions_app.api.permissions).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import signed_in_user
from accounts.models import User
from accounts.tokens import TokenAuthentication
from leadchat.api import error_response
from sessions_app import exports, selectors, services
from sessions_app.api import params
from sessions_app.api import serializers as out
from sessions_app.api.permissions import (
    CanAnswerVisitors,
    CanArchiveSessions,
    CanExportSessions,
    CanResolveErrors,
    CanViewErrors,
    CanViewSessions,
)
from sessions_app.errors import DomainError
from sessions_app.models import AutomationError, ChatSession


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The session is not in a state that allows this."
    default_code = "conflict"


BAD_PARAMS = error_response("Bad parameters; `error` names the first one, `fields` lists them all.")
NO_AUTH = error_response("No or bad credentials (session cookie or `Authorization: Token ...`).")
NO_ROLE = error_response("Signed in, but the user's role may not do this.")
NOT_FOUND = error_response("No such session (or error).")
CONFLICT = error_response("The move is not allowed from the session's current state.")
READ_ERRORS = {400: BAD_PARAMS, 401: NO_AUTH, 403: NO_ROLE}
ONE_ROW_ERRORS = {401: NO_AUTH, 403: NO_ROLE, 404: NOT_FOUND}


class StaffAPIView(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [CanViewSessions]


def _page(qs: QuerySet, page: int, page_size: int) -> tuple[dict[str, Any], list]:
    # A page past the last is an empty page (200), as the schema says of any page in range:
    # rows archived or deleted while a client pages through must not turn its next request
    # into an error. `num_pages` tells it where the end is.
    paginator = Paginator(qs, page_size)
    num_pages = paginator.num_pages
    rows = list(paginator.page(page).object_list) if page <= num_pages else []
    meta = {"count": paginator.count, "page": page, "page_size": page_size, "num_pages": num_pages}
    return meta, rows


def _row(session: ChatSession) -> dict[str, Any]:
    return out.SessionRowSerializer(session).data


# --- Sessions -----------------------------------------------------------------------------------


class SessionListApi(StaffAPIView):
    @extend_schema(
        operation_id="sessions_list",
        summary="List sessions",
        description="Filtered, searched, ordered and paginated. Default: active sessions "
        "(not archived, not in the trash), newest first. Sessions whose visitor waits for a "
        "person (`needs_human`) come first in any order.",
        parameters=[params.SessionListParams],
        responses={200: out.SessionPageSerializer, **READ_ERRORS},
        tags=["sessions"],
    )
    def get(self, request: Request) -> Response:
        data = params.validated(params.SessionListParams, request)
        qs = selectors.sessions_filter(params.session_filters(data, request), human_first=True)
        meta, rows = _page(qs, data["page"], data["page_size"])
        return Response({**meta, "results": out.SessionRowSerializer(rows, many=True).data})


class SessionDetailApi(StaffAPIView):
    @extend_schema(
        operation_id="sessions_retrieve",
        summary="One session with its transcript",
        description="Also for sessions in the trash. QA fields are read-only here.",
        responses={200: out.SessionDetailSerializer, **ONE_ROW_ERRORS},
        tags=["sessions"],
    )
    def get(self, request: Request, public_id: Any) -> Response:
        try:
            session = selectors.session_detail(public_id=public_id)
        except ChatSession.DoesNotExist:
            raise NotFound("No session with this id.") from None
        return Response(out.SessionDetailSerializer(session, context={"request": request}).data)


def _get_session(public_id: Any) -> ChatSession:
    try:
        return ChatSession.objects.get(public_id=public_id)
    except ChatSession.DoesNotExist:
        raise NotFound("No session with this id.") from None


class SessionMove(Protocol):
    def __call__(self, *, session: ChatSession, by: User | None) -> ChatSession: ...


# The moves of a session's lifecycle, by the name its URL ends with (sessions_app.api.urls) and
# the bulk endpoint's `action`.
MOVES: dict[str, SessionMove] = {
    "archive": services.session_archive,
    "unarchive": services.session_unarchive,
    "delete": services.session_delete,
    "restore": services.session_restore,
}
MOVE_HELP = {
    "archive": "Hide the session from default lists (nothing else changes).",
    "unarchive": "Bring an archived session back to the default lists.",
    "delete": "Move the session to the trash (restorable until purged).",
    "restore": "Take the session out of the trash.",
}


def _documented_move(path: str) -> str:
    """The move a documented path ends with (sessions_app.api.schema gives each its own path)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


class SessionMoveSchema(AutoSchema):
    """Each move is its own operation, as clients call it: /api/sessions/{public_id}/archive/."""

    def get_operation_id(self) -> str:
        return f"sessions_{_documented_move(self.path)}"

    def get_summary(self) -> str:
        return f"{_documented_move(self.path).capitalize()} a session"

    # drf-spectacular's AutoSchema already differs here from DRF's ViewInspector (in the stubs).
    def get_description(self) -> str:  # type: ignore[override]
        return MOVE_HELP[_documented_move(self.path)] + " Answers with the updated list row."


class SessionMoveApi(StaffAPIView):
    """Archive, unarchive, delete or restore one session: the move is the URL's last segment."""

    permission_classes = [CanArchiveSessions]
    schema = SessionMoveSchema()

    @extend_schema(
        request=None,
        responses={200: out.SessionRowSerializer, **ONE_ROW_ERRORS, 409: CONFLICT},
        tags=["sessions"],
    )
    def post(self, request: Request, public_id: Any, action: str) -> Response:
        session = _get_session(public_id)
        try:
            MOVES[action](session=session, by=signed_in_user(request))
        except DomainError as exc:
            raise Conflict(str(exc)) from None
        return Response(_row(selectors.session_row(pk=session.pk)))


class SessionBulkApi(StaffAPIView):
    permission_classes = [CanArchiveSessions]

    @extend_schema(
        operation_id="sessions_bulk",
        summary="Archive, unarchive, delete or restore many sessions",
        description="Each session moves on its own; the answer reports each one (a session "
        "already in the target state is reported with its error, the others still move).",
        request=params.BulkActionInput,
        responses={200: out.BulkResponseSerializer, 400: BAD_PARAMS, 401: NO_AUTH, 403: NO_ROLE},
        tags=["sessions"],
    )
    def post(self, request: Request) -> Response:
        body = params.BulkActionInput(data=request.data)
        body.is_valid(raise_exception=True)
        service = MOVES[body.validated_data["action"]]
        by = signed_in_user(request)
        ids = list(dict.fromkeys(body.validated_data["ids"]))
        found = {s.public_id: s for s in ChatSession.objects.filter(public_id__in=ids)}
        outcome: dict[Any, str | None] = {}
        for public_id in ids:
            session = found.get(public_id)
            if session is None:
                outcome[public_id] = "No session with this id."
                continue
            try:
                service(session=session, by=by)
                outcome[public_id] = None
            except DomainError as exc:
                outcome[public_id] = str(exc)
        rows = {s.public_id: s for s in selectors.session_rows(pks=[s.pk for s in found.values()])}
        results = [
            {
                "id": public_id,
                "ok": error is None,
                "error": error,
                "session": _row(rows[public_id]) if public_id in rows else None,
            }
            for public_id, error in outcome.items()
        ]
        return Response({"results": results})


class HumanRequestDismissApi(StaffAPIView):
    """End a visitor's request for a person without taking the session over (the team wrote
    back by email, or the visitor left): it stops sorting first and is not emailed."""

    permission_classes = [CanAnswerVisitors]

    @extend_schema(
        operation_id="sessions_human_request_dismiss",
        summary="Dismiss a visitor's request for a person",
        description="409 when the session has no open request (another agent took or "
        "dismissed it first). Answers with the updated list row.",
        request=None,
        responses={200: out.SessionRowSerializer, **ONE_ROW_ERRORS, 409: CONFLICT},
        tags=["sessions"],
    )
    def post(self, request: Request, public_id: Any) -> Response:
        session = _get_session(public_id)
        if not services.human_request_clear(session=session, by=signed_in_user(request)):
            raise Conflict("This session has no open request for a person.")
        return Response(_row(selectors.session_row(pk=session.pk)))


class SessionChangesApi(StaffAPIView):
    @extend_schema(
        operation_id="sessions_changes",
        summary="What changed since a cursor (live updates)",
        description="Poll with the previous answer's `cursor`. Rows come oldest change first, "
        "each with `matches`: whether it fits the filters sent along (the same as the list's). "
        "Rows changed in the last seconds may come again; compare `updated_at`.",
        parameters=[params.ChangesParams],
        responses={200: out.ChangesSerializer, **READ_ERRORS},
        tags=["sessions"],
    )
    def get(self, request: Request) -> Response:
        data = params.validated(params.ChangesParams, request)
        page = selectors.sessions_changed_since(
            since=data.get("since"), filters=params.session_filters(data, request)
        )
        results = []
        for session in page.sessions:
            # Read by ChangedSessionSerializer: a per-row flag, not a model field.
            session.matches = session.pk in page.matching_ids  # type: ignore[attr-defined]
            results.append(session)
        return Response(
            {
                "cursor": page.cursor.encode(),
                "truncated": page.truncated,
                "results": out.ChangedSessionSerializer(results, many=True).data,
            }
        )


# --- Stats --------------------------------------------------------------------------------------


class StatsApi(StaffAPIView):
    @extend_schema(
        operation_id="stats_retrieve",
        summary="KPIs and chart series for a date range",
        description="Sessions started between date_from and date_to (inclusive, default the "
        "last 30 days) in the user's time zone; sessions in the trash are left out.",
        parameters=[params.StatsParams],
        responses={200: out.StatsSerializer, **READ_ERRORS},
        tags=["stats"],
    )
    def get(self, request: Request) -> Response:
        data = params.validated(params.StatsParams, request)
        stats = selectors.sessions_stats(
            date_from=data["date_from"],
            date_to=data["date_to"],
            tz=data["zone"],
            site=data.get("site"),
        )
        return Response(out.StatsSerializer(stats).data)


# --- Automation errors --------------------------------------------------------------------------


class AutomationErrorListApi(StaffAPIView):
    permission_classes = [CanViewErrors]

    @extend_schema(
        operation_id="automation_errors_list",
        summary="List automation errors",
        parameters=[params.ErrorListParams],
        responses={200: out.ErrorPageSerializer, **READ_ERRORS},
        tags=["automation errors"],
    )
    def get(self, request: Request) -> Response:
        data = params.validated(params.ErrorListParams, request)
        qs = selectors.automation_errors_filter(
            resolved=data.get("resolved"),
            source=data.get("source", ""),
            session=data.get("session"),
        )
        meta, rows = _page(qs, data["page"], data["page_size"])
        rows_out = out.AutomationErrorSerializer(rows, many=True, context={"request": request})
        return Response({**meta, "results": rows_out.data})


class AutomationErrorResolveApi(StaffAPIView):
    permission_classes = [CanResolveErrors]

    @extend_schema(
        operation_id="automation_errors_resolve",
        summary="Mark an automation error resolved",
        description="Resolving twice is harmless (the first resolution is kept).",
        request=None,
        responses={200: out.AutomationErrorSerializer, **ONE_ROW_ERRORS},
        tags=["automation errors"],
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            error = AutomationError.objects.select_related("session").get(pk=pk)
        except AutomationError.DoesNotExist:
            raise NotFound("No automation error with this id.") from None
        error = services.automation_error_resolve(error=error, by=signed_in_user(request))
        return Response(out.AutomationErrorSerializer(error, context={"request": request}).data)


# --- Exports ------------------------------------------------------------------------------------


EXPORT_RENDERERS: dict[str, type[exports.CSVRenderer]] = {
    exports.CSV: exports.CSVRenderer,
    exports.JSONL: exports.JSONLinesRenderer,
}
EXPORT_TITLES = {exports.CSV: "CSV", exports.JSONL: "JSON Lines"}


class SessionExportSchema(AutoSchema):
    """One operation per export URL, each with its own id and media type."""

    @property
    def export_format(self) -> str:
        # This schema documents SessionExportApi only (`view` is typed as any APIView).
        return cast("SessionExportApi", self.view).file_format

    def get_operation_id(self) -> str:
        return f"sessions_export_{self.export_format}"

    def get_summary(self) -> str:
        return f"Export sessions as {EXPORT_TITLES[self.export_format]}"

    # drf-spectacular also takes {(status, media type): response} here; its annotation does not.
    def get_response_serializers(self) -> dict[Any, Any]:  # type: ignore[override]
        media_type = EXPORT_RENDERERS[self.export_format].media_type
        return {
            (200, media_type): OpenApiResponse(OpenApiTypes.STR, description="The export file."),
            **READ_ERRORS,
        }


class SessionExportApi(StaffAPIView):
    """The sessions as a file; the URLconf gives the format: `as_view(file_format=...)`.

    An init argument rather than a URL pattern's extra kwargs, because the schema generator
    builds the view with the init arguments but never sees a pattern's kwargs, and each format
    is documented as its own operation (SessionExportSchema).
    """

    permission_classes = [CanExportSessions]
    schema = SessionExportSchema()
    file_format = ""

    def get_renderers(self) -> list[Any]:
        # JSON first: errors (400/401/403) render as JSON whatever the client accepts.
        return [JSONRenderer(), EXPORT_RENDERERS[self.file_format]()]

    @extend_schema(
        description="Streamed, one row per session: lead, statuses, QA, delivery state, "
        "error count; `transcript=true` adds the messages. Same filters as the list.",
        parameters=[params.ExportParams],
        tags=["sessions"],
    )
    def get(self, request: Request) -> Any:
        data = params.validated(params.ExportParams, request)
        filters = params.session_filters(data, request)
        return exports.export_response(
            selectors.sessions_filter(filters),
            file_format=self.file_format,
            tz=filters.tz,
            transcript=data["transcript"],
        )

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # DRF answers an unknown `?format=` with a 404 (and ignores an empty one); both are
        # a bad parameter here.
        wanted = request.query_params.get("format")
        file_format = EXPORT_RENDERERS[self.file_format].format
        if wanted is not None and wanted not in {file_format, "json"}:
            raise ValidationError(
                {"format": f"Unknown format; use {file_format} or json (or leave it out)."}
            )
        return super().perform_content_negotiation(request, force)

    def finalize_response(self, request: Request, response: Any, *args, **kwargs) -> Any:
        if isinstance(response, Response):  # an error body: always JSON
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


@csrf_exempt  # it changes nothing; without this a POST would get the HTML CSRF page instead
def unknown_endpoint(request: Any, rest: str = "") -> Any:
    """JSON 404 for ids the URL patterns reject (not a UUID, not a number): API clients get the
    same error body as for an unknown id, never Django's HTML page."""
    return JsonResponse(
        {"error": "No such session, error or endpoint.", "code": "not_found"}, status=404
    )
