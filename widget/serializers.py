"""Input and output shapes of the public widget API (SPEC 4.2). No business logic here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_MESSAGE_CHARS = 4000


def _http_url_or_blank(value: str) -> str:
    # Only http(s) URLs are kept: these are shown as links on the dashboard.
    return value if value.lower().startswith(("http://", "https://")) else ""


class SessionStartIn(serializers.Serializer):
    site_key = serializers.CharField(max_length=64)
    page_url = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    utm_source = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    utm_medium = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    utm_campaign = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )

    def validate_page_url(self, value: str) -> str:
        return _http_url_or_blank(value)

    def validate_referrer(self, value: str) -> str:
        return _http_url_or_blank(value)


class MessageIn(serializers.Serializer):
    text = serializers.CharField(
        max_length=MAX_MESSAGE_CHARS,
        error_messages={
            "blank": "The message is empty.",
            "required": "The message text is missing.",
            "max_length": "The message is longer than 4,000 characters.",
        },
    )


class MessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    quick_replies = serializers.SerializerMethodField()
    expects = serializers.SerializerMethodField()

    def get_quick_replies(self, message: Any) -> list[str]:
        value = (message.metadata or {}).get("quick_replies")
        return [str(v) for v in value] if isinstance(value, list) else []

    def get_expects(self, message: Any) -> str:
        return "email" if (message.metadata or {}).get("expects") == "email" else "text"


class LeadOut(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.CharField()


class SessionStateOut(serializers.Serializer):
    completion_status = serializers.CharField()
    lead = LeadOut()


class SessionStartOut(serializers.Serializer):
    session_id = serializers.UUIDField()
    visitor_token = serializers.CharField()
    completion_status = serializers.CharField()
    messages = MessageOut(many=True)


class MessagePostOut(serializers.Serializer):
    messages = MessageOut(many=True)
    session = SessionStateOut()


class TranscriptOut(serializers.Serializer):
    session_id = serializers.UUIDField()
    completion_status = serializers.CharField()
    lead = LeadOut()
    messages = MessageOut(many=True)


class ErrorOut(serializers.Serializer):
    error = serializers.CharField(help_text="A readable message, safe to show to the visitor.")
    code = serializers.CharField(required=False)
    fields = serializers.JSONField(required=False)
