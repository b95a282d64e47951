"""Staff API of the Leads page: people (one row per normalised email) and their conversations.

A person is named by their lead key (a SHA-256 hex of the email, sessions_app.leads.lead_key),
never by the email itself, so no address ends up in a URL, an access log or a Referer. The
filters are the sessions list's (`SessionFilterParams`, without the trash: a person is made of
conversations not in it) and pick the people who have a matching conversation.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from leadchat.api import error_response
from sessions_app import exports, leads_selectors
from sessions_app.api import params
from sessions_app.api import serializers as out
from sessions_app.api.views import (
    NO_AUTH,
    NO_ROLE,
    READ_ERRORS,
    SessionExportApi,
    SessionExportSchema,
    StaffAPIView,
    _page,
)
from sessions_app.leads_selectors import DEFAULT_LEAD_ORDERING, LEAD_ORDERINGS, Lead
from sessions_app.models import ChatSession
from sessions_app.selectors import SessionFilters

# --- Parameters ---------------------------------------------------------------------------------


class LeadFilterParams(params.SessionFilterParams):
    # A person is made of conversations not in the trash (leads_selectors.person_sessions).
    trash = None  # type: ignore[assignment]
    ordering = serializers.ChoiceField(
        choices=[*LEAD_ORDERINGS, *(f"-{o}" for o in LEAD_ORDERINGS)],
        required=False,
        help_text="last_seen, first_seen, conversations or email; '-' for descending. "
        f"Default {DEFAULT_LEAD_ORDERING}.",
    )


class LeadListParams(LeadFilterParams, params.PageParams):
    pass


def lead_filters(data: dict[str, Any], request: Any) -> tuple[SessionFilters, str]:
    """The sessions filters that pick the people, and the people's ordering."""
    filters = params.session_filters({**data, "trash": False, "ordering": None}, request)
    return filters, data.get("ordering") or DEFAULT_LEAD_ORDERING


# --- Output -------------------------------------------------------------------------------------


class LeadSiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LeadLatestSerializer(serializers.Serializer):
    """The person's latest conversation: where their statuses come from."""

    id = serializers.UUIDField(source="public_id")
    started_at = serializers.DateTimeField()
    completion_status = serializers.CharField()
    archive_status = serializers.CharField()
    qa_status = serializers.CharField()
    delivery_state = serializers.CharField()


class LeadRowSerializer(serializers.Serializer):
    id = serializers.CharField(
        source="key", help_text="The person's key (hex SHA-256 of the normalised email)."
    )
    email = serializers.CharField(help_text="As the latest conversation wrote it.")
    name = serializers.CharField(help_text="The latest name given (empty if none).")
    phone = serializers.CharField(help_text="The latest phone given (empty if none).")
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    last_captured_at = serializers.DateTimeField(allow_null=True)
    conversations = serializers.IntegerField(help_text="Conversations not in the trash.")
    sites = LeadSiteSerializer(many=True)
    channels = serializers.ListField(child=serializers.CharField())
    latest = LeadLatestSerializer()


class LeadPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    results = LeadRowSerializer(many=True)


class LeadDetailSerializer(LeadRowSerializer):
    sessions = out.SessionPageSerializer(help_text="The person's conversations, newest first.")


# --- Views --------------------------------------------------------------------------------------

LEAD_NOT_FOUND = error_response("No such person (or all their conversations are in the trash).")
LEAD_ID = OpenApiParameter(
    "lead_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=f"^{leads_selectors.LEAD_KEY_PATTERN}$",
    description="A person's `id` from the list.",
)


class LeadListApi(StaffAPIView):
    @extend_schema(
        operation_id="leads_list",
        summary="List people (one row per normalised email)",
        description="The sessions list's filters pick the people with at least one matching "
        "conversation (default: an active one); each row covers all their conversations not "
        "in the trash, with the statuses of the latest. Ordered, paginated.",
        parameters=[LeadListParams],
        responses={200: LeadPageSerializer, **READ_ERRORS},
        tags=["leads"],
    )
    def get(self, request: Request) -> Response:
        data = params.validated(LeadListParams, request)
        filters, ordering = lead_filters(data, request)
        page = leads_selectors.leads_page(
            filters, ordering=ordering, page=data["page"], page_size=data["page_size"]
        )
        return Response(
            {
                "count": page.count,
                "page": page.page,
                "page_size": page.page_size,
                "num_pages": page.num_pages,
                "results": LeadRowSerializer(page.leads, many=True).data,
            }
        )


def lead_or_404(key: str) -> Lead:
    try:
        return leads_selectors.lead_detail(key=key)
    except ChatSession.DoesNotExist:
        raise NotFound("No person with this id.") from None


class LeadDetailApi(StaffAPIView):
    @extend_schema(
        operation_id="leads_retrieve",
        summary="One person with their conversations",
        parameters=[LEAD_ID, params.PageParams],
        responses={
            200: LeadDetailSerializer,
            400: READ_ERRORS[400],
            401: NO_AUTH,
            403: NO_ROLE,
            404: LEAD_NOT_FOUND,
        },
        tags=["leads"],
    )
    def get(self, request: Request, lead_id: str) -> Response:
        data = params.validated(params.PageParams, request)
        lead = lead_or_404(lead_id)
        meta, rows = _page(
            leads_selectors.lead_sessions(key=lead.key), data["page"], data["page_size"]
        )
        body = LeadRowSerializer(lead).data
        body["sessions"] = {**meta, "results": out.SessionRowSerializer(rows, many=True).data}
        return Response(body)


class LeadExportSchema(SessionExportSchema):
    def get_operation_id(self) -> str:
        return f"leads_export_{self.export_format}"

    def get_summary(self) -> str:
        return f"Export people as {'CSV' if self.export_format == exports.CSV else 'JSON Lines'}"


class LeadExportApi(SessionExportApi):
    """The people as a file, one row per person; the URLconf gives the format."""

    schema = LeadExportSchema()

    @extend_schema(
        description="Streamed, one row per person: email, latest name and phone, first and "
        "last seen, conversations, sites, channels and the latest conversation's statuses. "
        "Same filters and ordering as the list.",
        parameters=[LeadFilterParams],
        tags=["leads"],
    )
    def get(self, request: Request) -> Any:
        data = params.validated(LeadFilterParams, request)
        filters, ordering = lead_filters(data, request)
        return exports.lead_export_response(
            leads_selectors.leads_iter(filters, ordering=ordering),
            file_format=self.file_format,
            tz=filters.tz,
        )
