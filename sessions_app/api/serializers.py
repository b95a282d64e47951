"""Output serializers of the staff API. Read-only: writes go through `sessions_app.services`.

QA fields are part of the output for every role and writable by none here: QA moves belong to
the QA console (qa.services), so an agent can read a session's QA state but never change it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.encoding import iri_to_uri
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sessions_app.error_details import automation_error_details_visible
from sessions_app.models import AutomationError, Channel, ChatMessage, ChatSession


class SiteRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    public_key = serializers.CharField()


class LeadSerializer(serializers.Serializer):
    name = serializers.CharField(source="lead_name")
    email = serializers.CharField(source="lead_email")
    phone = serializers.CharField(source="lead_phone")
    captured_at = serializers.DateTimeField(source="lead_captured_at", allow_null=True)
    email_quality = serializers.CharField(
        help_text="valid, no_mx, disposable, role or unverifiable; empty when no email was "
        "checked (sessions_app.email_quality)."
    )


class UserRefField(serializers.CharField):
    """A user as their username (or null)."""

    # CharField's says str; None stays allowed for a direct call (DRF itself writes null).
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return value.get_username() if value is not None else None


class SessionRowSerializer(serializers.Serializer):
    """One row of a session list (also what the changes feed and the actions return)."""

    id = serializers.UUIDField(source="public_id")
    site = SiteRefSerializer(allow_null=True)
    channel = serializers.CharField()
    page_url = serializers.CharField()
    utm_source = serializers.CharField()
    started_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completion_status = serializers.CharField()
    archive_status = serializers.CharField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    has_lead = serializers.BooleanField()
    lead = LeadSerializer(source="*")
    message_count = serializers.IntegerField()
    delivery_state = serializers.CharField()
    qa_status = serializers.CharField()
    needs_human = serializers.BooleanField(
        help_text="The visitor asked for a person and nobody has taken the session yet."
    )
    human_requested_at = serializers.DateTimeField(
        allow_null=True, help_text="When the visitor last asked for a person."
    )
    error_count = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField())
    def get_error_count(self, session: ChatSession) -> int:
        # Annotated by every selector that feeds this serializer (no query per row).
        return getattr(session, "error_count", 0) or 0


class ChangedSessionSerializer(SessionRowSerializer):
    matches = serializers.BooleanField(help_text="Whether the row matches the client's filters.")
    held_by = UserRefField(
        allow_null=True, read_only=True, help_text="The agent who took the session over."
    )
    visitor_wrote_at = serializers.DateTimeField(
        allow_null=True, read_only=True, help_text="When the visitor last wrote."
    )


class MessageSerializer(serializers.ModelSerializer):
    sent_by = UserRefField(
        allow_null=True, read_only=True, help_text="Who wrote an agent's message (username)."
    )

    class Meta:
        model = ChatMessage
        fields = ["id", "role", "text", "created_at", "metadata", "sent_by"]


_HTTP_URL = URLValidator(schemes=["http", "https"])
# RFC 3986's generic syntax for an http(s) URI with an authority: what a JSON Schema "uri"
# format checker accepts. Django's URLValidator alone lets through `%zz`, a second `#`, or `[`
# in a query, which are not URIs.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_RFC3986_HTTP_URI = re.compile(
    r"^https?://"
    r"(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    r"(?::[0-9]*)?"
    rf"(?:/{_PCHAR}*)*"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?$"
)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_QUERY_SAFE = "/?:@!$&'()*+,;=-._~%"


def _as_uri(text: str) -> str:
    """An http(s) URL as an RFC 3986 URI (non-ASCII and stray characters percent-encoded)."""
    parts = urlsplit(_LONE_PERCENT.sub("%25", iri_to_uri(text)))
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            quote(parts.path, safe="/:@!$&'()*+,;=-._~%"),
            quote(parts.query, safe=_QUERY_SAFE),
            quote(parts.fragment, safe=_QUERY_SAFE),
        )
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "uri", "maxLength": 2000},
            {"type": "string", "maxLength": 0},
        ],
        "description": "Link to the execution in n8n: an http(s) URI, or empty when none was "
        "sent or the stored value is not a valid URL.",
    }
)
class StoredHttpUrlField(serializers.CharField):
    """A stored URL as output: the URI when it is a valid http(s) URL, else "".

    The column may hold text that is not a URL (rows written before the automation API checked
    its input, or by code that did not): the schema promises a URI, and the dashboard turns the
    value into a link, so what is not one is not passed on. IRIs (non-ASCII) go out
    percent-encoded, as a URI must be.
    """

    def to_representation(self, value: Any) -> str:
        text = str(value or "")
        if not text or len(text) > 2000:
            return ""
        try:
            _HTTP_URL(text)
            uri = _as_uri(text)
        except (ValidationError, ValueError):
            return ""
        return uri if _RFC3986_HTTP_URI.match(uri) and len(uri) <= 2000 else ""


class AutomationErrorSerializer(serializers.ModelSerializer):
    session = serializers.UUIDField(source="session.public_id", allow_null=True, default=None)
    resolved_by = UserRefField(allow_null=True)
    execution_url = StoredHttpUrlField(read_only=True)

    class Meta:
        model = AutomationError
        fields = [
            "id",
            "source",
            "workflow",
            "node",
            "message",
            "execution_id",
            "execution_url",
            "details",
            "session",
            "created_at",
            "resolved",
            "resolved_at",
            "resolved_by",
        ]

    def to_representation(self, instance: AutomationError) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        data["details"] = automation_error_details_visible(
            error=instance, user=getattr(request, "user", None)
        )
        return data


class QASerializer(serializers.Serializer):
    status = serializers.CharField(source="qa_status")
    status_by = UserRefField(source="qa_status_by", allow_null=True)
    status_at = serializers.DateTimeField(source="qa_status_at", allow_null=True)
    notes = serializers.CharField(source="qa_notes")
    notes_by = UserRefField(source="qa_notes_by", allow_null=True)
    notes_at = serializers.DateTimeField(source="qa_notes_at", allow_null=True)
    dev_feedback = serializers.CharField()
    dev_feedback_by = UserRefField(allow_null=True)
    dev_feedback_at = serializers.DateTimeField(allow_null=True)


class SessionDetailSerializer(SessionRowSerializer):
    referrer = serializers.CharField()
    utm_medium = serializers.CharField()
    utm_campaign = serializers.CharField()
    utm_term = serializers.CharField()
    utm_content = serializers.CharField()
    user_agent = serializers.CharField()
    ended_at = serializers.DateTimeField(allow_null=True)
    lead_data = serializers.JSONField()
    ai_engaged = serializers.BooleanField()
    archived_at = serializers.DateTimeField(allow_null=True)
    archived_by = UserRefField(allow_null=True)
    deleted_by = UserRefField(allow_null=True)
    held_by = UserRefField(allow_null=True, help_text="The agent who took the session over.")
    held_at = serializers.DateTimeField(allow_null=True)
    qa = QASerializer(source="*", read_only=True)
    messages = MessageSerializer(many=True)
    automation_errors = AutomationErrorSerializer(many=True)


class SessionPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    results = SessionRowSerializer(many=True)


class ErrorPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    results = AutomationErrorSerializer(many=True)


class ChangesSerializer(serializers.Serializer):
    cursor = serializers.CharField()
    truncated = serializers.BooleanField(help_text="More changes wait: poll again at once.")
    results = ChangedSessionSerializer(many=True)


class BulkResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    session = SessionRowSerializer(allow_null=True)


class BulkResponseSerializer(serializers.Serializer):
    results = BulkResultSerializer(many=True)


class StatsTotalsSerializer(serializers.Serializer):
    opened = serializers.IntegerField(
        help_text="Times visitors without a conversation opened the web chat in the range "
        "(opening creates no session; the first message does)."
    )
    sessions = serializers.IntegerField()
    leads = serializers.IntegerField()
    converted_sessions = serializers.IntegerField()
    conversion_rate = serializers.FloatField()
    ai_engaged_sessions = serializers.IntegerField()
    needs_human = serializers.IntegerField(
        help_text="Of these sessions, those whose visitor waits for a person now."
    )
    avg_messages = serializers.FloatField()
    avg_ai_latency_ms = serializers.FloatField(allow_null=True)
    ai_replies_timed = serializers.IntegerField()
    ai_tokens = serializers.IntegerField(
        help_text="Tokens the AI backends reported for these sessions (OpenAI-compatible; "
        "n8n reports none)."
    )
    ai_cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=4,
        help_text="What those tokens cost at each site's price per 1,000 tokens (a decimal "
        "string, in the currency the prices are set in).",
    )
    ai_tokens_per_lead = serializers.FloatField(
        allow_null=True,
        help_text="ai_tokens / converted_sessions; null when no session has a lead.",
    )
    ai_cost_per_lead = serializers.DecimalField(
        max_digits=24,
        decimal_places=4,
        allow_null=True,
        help_text="ai_cost / converted_sessions (a decimal string); null when no session has "
        "a lead.",
    )


class StatsDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    sessions = serializers.IntegerField()
    leads = serializers.IntegerField()


class StatsPageSerializer(serializers.Serializer):
    page_url = serializers.CharField()
    sessions = serializers.IntegerField()
    leads = serializers.IntegerField()


class StatsSourceSerializer(serializers.Serializer):
    utm_source = serializers.CharField()
    sessions = serializers.IntegerField()
    leads = serializers.IntegerField()


class StatsChannelSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    sessions = serializers.IntegerField()
    leads = serializers.IntegerField(help_text="Sessions of this channel with a lead.")


class StatsFunnelSerializer(serializers.Serializer):
    opened = serializers.IntegerField(help_text="Openings of the web chat (as totals.opened).")
    engaged = serializers.IntegerField(
        help_text="Web sessions started in the range where the visitor wrote."
    )
    leads = serializers.IntegerField(help_text="Of those engaged sessions, the ones with a lead.")


class StatsSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    time_zone = serializers.CharField()
    totals = StatsTotalsSerializer()
    per_day = StatsDaySerializer(many=True)
    completion = serializers.DictField(child=serializers.IntegerField())
    qa = serializers.DictField(child=serializers.IntegerField())
    top_pages = StatsPageSerializer(many=True)
    utm_sources = StatsSourceSerializer(many=True)
    channels = StatsChannelSerializer(many=True)
    funnel = StatsFunnelSerializer(help_text="The web widget's funnel: opened -> engaged -> lead.")
