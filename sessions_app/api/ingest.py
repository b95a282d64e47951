"""Transcript ingest for conversations an AI agent runs elsewhere (n8n on WhatsApp, Instagram,
Telegram, Messenger...), under /api/ingest/.

`POST /api/ingest/messages/` with `Authorization: Bearer <INGEST_API_KEY>` (closed, 503, while
it is unset). The body is one message, or `{"messages": [...]}` with up to MAX_BATCH of them.
Each message is checked and stored on its own (`sessions_app.ingest.message_ingest`: its own
transaction), so a bad one is refused without losing the good ones beside it, and the answer
says per message `created`, `duplicate` or `error` with the field at fault. Any refused message
makes the answer a 400 (the others are stored all the same, and resending the batch is safe:
they come back `duplicate`), so n8n marks the execution failed instead of going on silently.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadchat.api import ErrorBodySerializer, error_response
from sessions_app.api.bearer import KeyedApi
from sessions_app.errors import IngestRefused
from sessions_app.ingest import INGEST_ROLES, message_ingest
from sessions_app.models import Channel
from widget.selectors import site_for_key

app_name = "ingest-api"

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 100
# An AI's long answer fits; the widget's visitors have 4,000.
MAX_TEXT_CHARS = 20_000
ID_MAX_LENGTH = 255
# Closed with a 503 while unset (the automation API's 403 predates it): the operator has not
# switched it on yet, which no key the client could send would change.
INGEST_API = KeyedApi(
    setting="INGEST_API_KEY",
    name="ingest API",
    realm="leadchat-ingest",
    closed_status=status.HTTP_503_SERVICE_UNAVAILABLE,
    max_body_bytes=MAX_BODY_BYTES,
    max_body_text="1 MB",
)


class _KnownKeysOnly(serializers.Serializer):
    # A key the object does not take is refused by name: a typo (`conversationId`) would
    # otherwise be dropped without a word and the message stored without what it meant.

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(key for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {
                        unknown[0][:100]: [
                            f"Unknown field: this object takes {', '.join(self.fields)}."
                        ]
                    }
                )
        return super().to_internal_value(data)


class _AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset: a time without one could be any of 26 hours."""

    default_error_messages = {
        "naive": "The time has no time zone: send ISO 8601 with an offset or Z "
        "(2026-12-01T13:05:00Z)."
    }

    def enforce_timezone(self, value: Any) -> Any:
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            self.fail("naive")
        return super().enforce_timezone(value)


class IngestLeadInSerializer(_KnownKeysOnly):
    """Lead fields found in a message."""

    name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    email = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=50)


class IngestMessageInSerializer(_KnownKeysOnly):
    """One message of a conversation run elsewhere. A key it does not take is refused."""

    channel = serializers.ChoiceField(
        choices=Channel.values,
        error_messages={
            "invalid_choice": f"Unknown channel {{input!r}}: one of {', '.join(Channel.values)}."
        },
        help_text="Where the conversation happens.",
    )
    conversation_id = serializers.CharField(
        max_length=ID_MAX_LENGTH,
        help_text="The conversation's id on its channel (a chat id, a phone number, n8n's "
        "sessionId): one conversation is one session. A number is taken as its digits.",
    )
    message_id = serializers.CharField(
        max_length=ID_MAX_LENGTH,
        help_text="The message's id on its channel: a message sent again with the same id in "
        "the same conversation is stored once (`duplicate`).",
    )
    role = serializers.ChoiceField(
        choices=list(INGEST_ROLES),
        error_messages={
            "invalid_choice": f"Unknown role {{input!r}}: one of {', '.join(INGEST_ROLES)}."
        },
        help_text="visitor (the person), ai (the AI agent) or agent (a person answering).",
    )
    text = serializers.CharField(max_length=MAX_TEXT_CHARS)
    created_at = _AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="When the message was written (ISO 8601 with an offset). Stored as the "
        "message's time; default now. Up to 5 minutes ahead of the server's clock is taken "
        "as now, later is refused, and so is a time before 2000.",
    )
    metadata = serializers.DictField(
        required=False, default=dict, help_text="Anything else, stored with the message."
    )
    lead = IngestLeadInSerializer(
        required=False,
        allow_null=True,
        help_text="Lead fields found in this message; empty or null ones are left out. A name "
        "and a valid email complete the lead and send the lead webhook, as on the web.",
    )
    site = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="A site's public key: a new conversation belongs to that site (its webhook "
        "endpoints, its filter); none by default.",
    )


class IngestBatchInSerializer(_KnownKeysOnly):
    """Up to 100 messages, each checked and stored on its own."""

    messages = serializers.ListField(
        child=IngestMessageInSerializer(), min_length=1, max_length=MAX_BATCH
    )


# What became of each message; also ENUM_NAME_OVERRIDES' name for it in the schema.
RESULT_STATUSES = ["created", "duplicate", "error"]


class IngestResultSerializer(serializers.Serializer):
    """What became of one message of the body."""

    index = serializers.IntegerField(help_text="The message's place in the batch, from 0.")
    message_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=RESULT_STATUSES)
    session_id = serializers.UUIDField(
        allow_null=True, help_text="The conversation's session (null for an error)."
    )
    field = serializers.CharField(
        allow_null=True, help_text="What is wrong, as a path in the message (`lead.email`)."
    )
    error = serializers.CharField(allow_null=True)


class IngestAnswerSerializer(serializers.Serializer):
    """Counts, and each message's result in the order sent."""

    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    refused = serializers.IntegerField()
    results = IngestResultSerializer(many=True)


class IngestRefusedSerializer(ErrorBodySerializer):
    """A 400: the body as a whole, or some of its messages (then with the per-message results;
    the messages that were fine are stored)."""

    created = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    refused = serializers.IntegerField(required=False)
    results = IngestResultSerializer(many=True, required=False)


def _first_error(errors: Any) -> tuple[str | None, str]:
    """The first error of a serializer's nested errors, with the path of the field at fault."""
    names: list[str] = []
    node = errors
    while True:
        if isinstance(node, dict) and node:
            key, node = next(iter(node.items()))
            if key != "non_field_errors":
                names.append(str(key))
        elif isinstance(node, list) and node:
            node = node[0]
        else:
            break
    message = str(node) if isinstance(node, str) else "Invalid input."
    return ".".join(names) or None, message


def _raw_id(item: Any) -> str | None:
    value = item.get("message_id") if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)[:ID_MAX_LENGTH]


class _SiteKeys:
    """Site keys of one request, each looked up once."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}

    def site(self, key: str) -> Any:
        if key not in self.found:
            self.found[key] = site_for_key(key)
        return self.found[key]


def _ingest_one(index: int, item: Any, sites: _SiteKeys) -> dict[str, Any]:
    result: dict[str, Any] = {
        "index": index,
        "message_id": _raw_id(item),
        "status": "error",
        "session_id": None,
        "field": None,
        "error": None,
    }
    serializer = IngestMessageInSerializer(data=item)
    if not serializer.is_valid():
        result["field"], result["error"] = _first_error(serializer.errors)
        return result
    data: dict[str, Any] = serializer.validated_data
    site = None
    if data["site"]:
        site = sites.site(data["site"])
        if site is None:
            result["field"], result["error"] = "site", "No site has this key."
            return result
    try:
        ingested = message_ingest(
            channel=data["channel"],
            conversation_id=data["conversation_id"],
            message_id=data["message_id"],
            role=data["role"],
            text=data["text"],
            created_at=data.get("created_at"),
            metadata=data["metadata"],
            lead=data.get("lead"),
            site=site,
        )
    except IngestRefused as exc:
        result["field"], result["error"] = exc.field, str(exc)
        return result
    result["status"] = "created" if ingested.created else "duplicate"
    result["session_id"] = ingested.session.public_id
    return result


def _messages_of(body: Any) -> tuple[list[Any], bool] | Response:
    """The reported messages and whether the body was a batch, or the answer refusing it."""
    if not isinstance(body, dict):
        return Response(
            {"error": 'Send one message object, or {"messages": [...]} for a batch.'},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if "messages" not in body:
        return [body], False
    extra = sorted(key for key in body if key != "messages")
    if extra:
        return Response(
            {"error": f"{extra[0][:100]}: a batch takes only `messages` (a list of messages)."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return Response(
            {"error": "messages: send a list of 1 to 100 message objects."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if len(messages) > MAX_BATCH:
        return Response(
            {
                "error": f"A batch holds at most {MAX_BATCH} messages ({len(messages)} sent): "
                "split it."
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return messages, True


class IngestMessagesView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="ingest_messages",
        summary="Store messages of a conversation run elsewhere (n8n)",
        description=(
            "Send with `Authorization: Bearer <INGEST_API_KEY>`. JSON body up to 1 MB: one "
            'message, or `{"messages": [...]}` with 1 to 100. Conversations are found or '
            "started by (`channel`, `conversation_id`); a message is stored once per "
            "`message_id` in its conversation. Each message is checked and stored on its own: "
            "the answer lists each as `created`, `duplicate` or `error` (with `field`). When any "
            "is refused the answer is a 400, the others being stored all the same; resending "
            "the whole batch is safe."
        ),
        # A security requirement object: drf-spectacular takes it as it is, types it as a name.
        auth=[{"IngestBearer": []}],  # type: ignore[list-item]
        request=PolymorphicProxySerializer(
            component_name="IngestBody",
            serializers=[IngestMessageInSerializer, IngestBatchInSerializer],
            resource_type_field_name=None,
        ),
        responses={
            201: OpenApiResponse(IngestAnswerSerializer, description="Stored (some or all)."),
            200: OpenApiResponse(
                IngestAnswerSerializer, description="Every message was already stored."
            ),
            400: OpenApiResponse(
                IngestRefusedSerializer,
                description="Invalid JSON or body, or some messages refused (see `results`).",
            ),
            401: error_response("No Authorization header."),
            403: error_response("Wrong key."),
            413: error_response("Body over 1 MB, or more than 100 messages."),
            415: error_response("Body is not JSON."),
            503: error_response("The API is closed: INGEST_API_KEY is not set."),
        },
        examples=[
            OpenApiExample(
                "A turn from an n8n AI agent (visitor and answer)",
                request_only=True,
                value={
                    "messages": [
                        {
                            "channel": "whatsapp",
                            "conversation_id": "4915112345678",
                            "message_id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFDNB",
                            "role": "visitor",
                            "text": "Hi, what does the premium plan cost?",
                            "created_at": "2026-12-01T13:05:00Z",
                        },
                        {
                            "channel": "whatsapp",
                            "conversation_id": "4915112345678",
                            "message_id": "wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFDNB:reply",
                            "role": "ai",
                            "text": "The premium plan is 49 EUR a month. May I have your email?",
                            "metadata": {"model": "gpt-4o-mini"},
                            "lead": {"name": "Ana Silva", "email": "", "phone": "+4915112345678"},
                        },
                    ]
                },
            )
        ],
        tags=["ingest"],
    )
    def post(self, request: Request) -> Response:
        refused = INGEST_API.refusal(request)
        if refused is not None:
            return refused
        parsed = _messages_of(request.data)
        if isinstance(parsed, Response):
            return parsed
        messages, batch = parsed
        sites = _SiteKeys()
        results = [_ingest_one(index, item, sites) for index, item in enumerate(messages)]
        counts = {
            "created": sum(r["status"] == "created" for r in results),
            "duplicates": sum(r["status"] == "duplicate" for r in results),
            "refused": sum(r["status"] == "error" for r in results),
        }
        body = IngestAnswerSerializer({**counts, "results": results}).data
        refusals = [r for r in results if r["status"] == "error"]
        if refusals:
            first = refusals[0]
            where = ".".join(
                part
                for part in (f"messages[{first['index']}]" if batch else "", first["field"] or "")
                if part
            )
            summary = f"{where}: {first['error']}" if where else first["error"]
            if batch:
                summary = (
                    f"{len(refusals)} of {len(results)} messages refused (the others are "
                    f"stored); the first: {summary}"
                )
            return Response({"error": summary, **body}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            body, status=status.HTTP_201_CREATED if counts["created"] else status.HTTP_200_OK
        )


urlpatterns = [
    path("messages/", IngestMessagesView.as_view(), name="messages"),
]
