"""Automation error API for n8n's error workflow, under /api/automation/.

`POST /api/automation/errors/` with `Authorization: Bearer <AUTOMATION_API_KEY>`. A replayed
execution id is stored once (200 with the stored row); a new error is 201. The key is the only
credential: no session or token auth here, so no CSRF either.
"""

import uuid
from typing import Any
from urllib.parse import urlsplit

from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadchat.api import error_response
from leadchat.http_urls import is_http_url
from sessions_app.api.bearer import KeyedApi
from sessions_app.models import AutomationError, ChatSession
from sessions_app.services import automation_error_record

app_name = "automation-api"

MAX_BODY_BYTES = 64 * 1024
AUTOMATION_API = KeyedApi(
    setting="AUTOMATION_API_KEY",
    name="automation error API",
    realm="leadchat-automation",
    closed_status=status.HTTP_403_FORBIDDEN,
    max_body_bytes=MAX_BODY_BYTES,
    max_body_text="64 KB",
)


class AutomationErrorInSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="The error message (required).")
    workflow = serializers.CharField(required=False, allow_blank=True, default="")
    node = serializers.CharField(required=False, allow_blank=True, default="")
    execution_id = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="n8n's execution id; a replay with the same id is stored once.",
    )
    execution_url = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Link to the execution in n8n."
    )
    session_id = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default="",
        help_text="A chat session's public id; the error is linked to it when it exists.",
    )
    details = serializers.DictField(
        required=False, default=dict, help_text="Anything else (stack, node parameters...)."
    )

    def validate_execution_url(self, value: str) -> str:
        # A value that is not a URL at all (an unclosed IPv6 bracket: urlsplit raises) is a
        # broken workflow expression: say so. A well-formed URL of another scheme is only
        # left out (see _http_url), so a report is never refused for what n8n's own
        # `$execution.url` could hold.
        try:
            urlsplit(value)
        except ValueError as exc:
            raise serializers.ValidationError(f"Not a URL ({exc}).") from None
        return value


class AutomationErrorOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.BooleanField(help_text="False when the execution id was seen before.")
    session_id = serializers.UUIDField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())


def _find_session(raw: str | None, warnings: list[str]) -> ChatSession | None:
    if not raw:
        return None
    try:
        public_id = uuid.UUID(str(raw))
    except ValueError:
        warnings.append(f"session_id {raw[:100]!r} is not a session id; stored without a link.")
        return None
    session = ChatSession.objects.filter(public_id=public_id).first()
    if session is None:
        warnings.append(f"No session {public_id}; stored without a link.")
    return session


def _http_url(raw: str, warnings: list[str]) -> str:
    if not raw:
        return ""
    if is_http_url(raw) and len(raw) <= 2000:
        return raw
    # Only http(s) URLs are ever stored: the admin and dashboard turn this into a link.
    warnings.append("execution_url is not an http(s) URL; it was not stored.")
    return ""


class AutomationErrorCreateView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="automation_error_create",
        summary="Record an automation error (n8n error workflow)",
        description=(
            "Send with `Authorization: Bearer <AUTOMATION_API_KEY>`. JSON body up to 64 KB. "
            "A replayed `execution_id` is stored once and answers 200 with the stored row. An "
            "unknown `session_id` does not lose the error: it is stored unlinked, with a "
            "warning in the answer."
        ),
        # A security requirement object: drf-spectacular takes it as it is, types it as a name.
        auth=[{"AutomationBearer": []}],  # type: ignore[list-item]
        request=AutomationErrorInSerializer,
        responses={
            201: OpenApiResponse(AutomationErrorOutSerializer, description="Stored."),
            200: OpenApiResponse(
                AutomationErrorOutSerializer, description="Replay: already stored."
            ),
            400: error_response("Invalid JSON or fields."),
            401: error_response("No Authorization header."),
            403: error_response("Wrong key (or API closed)."),
            413: error_response("Body over 64 KB."),
            415: error_response("Body is not JSON."),
        },
        examples=[
            OpenApiExample(
                "n8n error workflow",
                request_only=True,
                value={
                    "workflow": "Lead intake",
                    "node": "HTTP Request",
                    "message": "Request failed with status code 500",
                    "execution_id": "2315",
                    "execution_url": "https://n8n.example.com/workflow/7/executions/2315",
                    "session_id": "6f1c1a8e-4f57-4b8a-9f0a-2d1f7c3b9e10",
                    "details": {"mode": "trigger"},
                },
            )
        ],
        tags=["automation"],
    )
    def post(self, request: Request) -> Response:
        refused = AUTOMATION_API.refusal(request)
        if refused is not None:
            return refused
        serializer = AutomationErrorInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        warnings: list[str] = []
        session = _find_session(data.get("session_id"), warnings)
        error, created = automation_error_record(
            source=AutomationError.Source.N8N,
            message=data["message"],
            workflow=data["workflow"],
            node=data["node"],
            execution_id=data["execution_id"],
            execution_url=_http_url(data["execution_url"], warnings),
            details=data["details"],
            session=session,
        )
        body = AutomationErrorOutSerializer(
            {
                "id": error.pk,
                "created": created,
                "session_id": error.session.public_id if error.session is not None else None,
                "warnings": warnings,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


urlpatterns = [
    path("errors/", AutomationErrorCreateView.as_view(), name="error-create"),
]
