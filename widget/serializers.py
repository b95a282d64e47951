"""Input and output shapes of the public widget API (SPEC 4.2). No business logic here."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from leadchat.http_urls import is_http_url
from sessions_app.takeover import display_name

MAX_MESSAGE_CHARS = 4000

# Written as validators so that the OpenAPI schema states them as patterns: a request the schema
# calls valid is then never refused (DRF refuses NUL characters and blank-after-trimming values).
NOT_BLANK = RegexValidator(r"^[^\x00]*[^\x00\s][^\x00]*$", "The value is empty.")


class StrictCharField(serializers.CharField):
    """Text only. DRF's CharField turns a number into its text (`utm_campaign: 0` became "0"),
    while the schema documents a string: a non-string is a 400 naming the field."""

    default_error_messages = {"invalid": "Expected text (a JSON string)."}

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _LenientCharField(StrictCharField):
    """Page context the browser sends: NUL characters are dropped rather than refused."""

    def to_internal_value(self, data) -> str:
        return super().to_internal_value(data).replace("\x00", "")


def _optional(max_length: int) -> serializers.CharField:
    return _LenientCharField(max_length=max_length, required=False, allow_blank=True, default="")


def _http_url_or_blank(value: str) -> str:
    # Only http(s) URLs are kept: these are shown as links on the dashboard.
    return value if is_http_url(value) else ""


class SessionStartIn(serializers.Serializer):
    site_key = StrictCharField(max_length=64, validators=[NOT_BLANK])
    page_url = _optional(2000)
    referrer = _optional(2000)
    utm_source = _optional(200)
    utm_medium = _optional(200)
    utm_campaign = _optional(200)

    def validate_page_url(self, value: str) -> str:
        return _http_url_or_blank(value)

    def validate_referrer(self, value: str) -> str:
        return _http_url_or_blank(value)


class OpeningIn(serializers.Serializer):
    site_key = StrictCharField(max_length=64, validators=[NOT_BLANK])
    page_url = StrictCharField(
        max_length=2000,
        help_text="The address of the page the chat was opened on.",
        error_messages={"required": "page_url (the page the chat was opened on) is missing."},
    )

    def validate_page_url(self, value: str) -> str:
        if not is_http_url(value):
            raise serializers.ValidationError("Expected the http(s) address of the page.")
        return value


class LauncherLabels(serializers.Serializer):
    open = serializers.CharField(help_text='The launcher\'s label, e.g. "Open chat".')
    close = serializers.CharField(help_text="The launcher's label while the chat is open.")
    unread = serializers.CharField(
        help_text="With unread messages; `%(count)s` stands for their number."
    )
    frame = serializers.CharField(help_text="The chat frame's title.")


class SiteAvailabilityOut(serializers.Serializer):
    available = serializers.BooleanField()
    color = serializers.CharField(help_text="The site's theme colour (#rrggbb).")
    labels = LauncherLabels(help_text="The launcher's texts in the site's language.")


class MessageIn(serializers.Serializer):
    text = StrictCharField(
        max_length=MAX_MESSAGE_CHARS,
        validators=[NOT_BLANK],
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
    author = serializers.SerializerMethodField(
        help_text="For a human agent's message (and a takeover line): the agent's first name."
    )

    def get_author(self, message: Any) -> str:
        if message.role == "visitor" or message.sent_by_id is None:
            return ""
        return display_name(message.sent_by)

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


class MessagesSinceIn(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        required=False,
        default=0,
        help_text="The `cursor` of the previous answer (0: from the start).",
    )


class MessagesSinceOut(serializers.Serializer):
    messages = MessageOut(many=True)
    cursor = serializers.IntegerField(help_text="Send it back as `after` in the next poll.")
    held = serializers.BooleanField(help_text="Whether a person (not the AI) answers now.")
    poll_ms = serializers.IntegerField(help_text="How long to wait before the next poll.")
