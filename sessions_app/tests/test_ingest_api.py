"""POST /api/ingest/messages/: transcripts of conversations n8n runs on other channels."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from sessions_app.models import (
    ChatMessage,
    ChatSession,
    CompletionStatus,
    Delivery,
    DeliveryState,
    MessageRole,
    WebhookEndpoint,
)
from sessions_app.services import session_delete
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

URL = "/api/ingest/messages/"
KEY = "ingest-key-for-tests-0123456789"


@pytest.fixture(autouse=True)
def api_key(settings):
    settings.INGEST_API_KEY = KEY


def post(body, *, auth: str | None = f"Bearer {KEY}", content_type="application/json", **extra):
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client().post(URL, data=data, content_type=content_type, **headers, **extra)


def message(**fields: Any) -> dict[str, Any]:
    return {
        "channel": "whatsapp",
        "conversation_id": "4915112345678",
        "message_id": "wamid.1",
        "role": "visitor",
        "text": "Hi, what does the premium plan cost?",
        **fields,
    }


def nothing_stored() -> bool:
    return not ChatSession.objects.exists() and not ChatMessage.objects.exists()


# --- Authentication -----------------------------------------------------------------------------


def test_missing_authorization_is_401_and_nothing_is_stored():
    response = post(message(), auth=None)
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]
    assert response["WWW-Authenticate"] == 'Bearer realm="leadchat-ingest"'
    assert nothing_stored()


@pytest.mark.parametrize(
    "auth", [f"Bearer {KEY}x", "Bearer ", f"Basic {KEY}", KEY, f"Bearer {KEY[:-1]}"]
)
def test_wrong_key_is_403_and_nothing_is_stored(auth):
    response = post(message(), auth=auth)
    assert response.status_code == 403
    assert response.json()["error"] == "Invalid API key."
    assert nothing_stored()


def test_the_automation_key_does_not_open_the_ingest_api(settings):
    settings.AUTOMATION_API_KEY = "the-error-workflow-key"
    response = post(message(), auth="Bearer the-error-workflow-key")
    assert response.status_code == 403
    assert nothing_stored()


def test_api_is_closed_while_no_key_is_configured(settings):
    settings.INGEST_API_KEY = ""
    for auth in ("Bearer ", "Bearer anything"):
        response = post(message(), auth=auth)
        assert response.status_code == 503
        assert response.json()["error"] == "The ingest API is closed: INGEST_API_KEY is not set."
    assert nothing_stored()


def test_other_methods_are_refused():
    assert Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {KEY}").status_code == 405


# --- One message, a batch -----------------------------------------------------------------------


def test_one_message_starts_its_conversation_and_is_stored_with_every_field():
    response = post(
        message(
            conversation_id=4915112345678,  # n8n often has the chat id as a number
            created_at="2026-11-30T09:15:00+01:00",
            metadata={"wa_type": "text", "profile": {"name": "Ana"}},
        )
    )
    assert response.status_code == 201, response.content
    body = response.json()
    session = ChatSession.objects.get()
    assert body == {
        "created": 1,
        "duplicates": 0,
        "refused": 0,
        "results": [
            {
                "index": 0,
                "message_id": "wamid.1",
                "status": "created",
                "session_id": str(session.public_id),
                "field": None,
                "error": None,
            }
        ],
    }
    assert (session.channel, session.external_id, session.site) == (
        "whatsapp",
        "4915112345678",
        None,
    )
    # No widget visitor can resume a conversation of another channel.
    assert session.visitor_token_hash == ""
    stored = ChatMessage.objects.get()
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    assert (stored.role, stored.text, stored.external_id, stored.created_at) == (
        MessageRole.VISITOR,
        "Hi, what does the premium plan cost?",
        "wamid.1",
        at,
    )
    assert stored.metadata == {"wa_type": "text", "profile": {"name": "Ana"}}
    assert (session.started_at, session.last_activity_at) == (at, at)
    assert session.message_count == 1 and session.ai_engaged
    assert session.completion_status == CompletionStatus.IN_PROGRESS


def test_a_batch_keeps_its_roles_and_order_in_one_conversation():
    response = post(
        {
            "messages": [
                message(message_id="m1", role="visitor", text="Do you ship to Porto?"),
                message(
                    message_id="m2",
                    role="ai",
                    text="Yes, in 2 days.",
                    metadata={"latency_ms": 840, "model": "gpt-4o-mini"},
                ),
                message(message_id="m3", role="agent", text="Ana from sales here: and free."),
            ]
        }
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["created"], body["duplicates"], body["refused"]) == (3, 0, 0)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert [r["message_id"] for r in body["results"]] == ["m1", "m2", "m3"]
    session = ChatSession.objects.get()
    assert {r["session_id"] for r in body["results"]} == {str(session.public_id)}
    assert list(session.messages.values_list("role", "text")) == [
        ("visitor", "Do you ship to Porto?"),
        ("ai", "Yes, in 2 days."),
        ("agent", "Ana from sales here: and free."),
    ]
    assert session.message_count == 3
    assert (session.ai_replies_timed, session.ai_latency_ms_total) == (1, 840.0)


def test_conversations_are_told_apart_by_channel_and_id():
    post(
        {
            "messages": [
                message(channel="whatsapp", conversation_id="42", message_id="a"),
                message(channel="telegram", conversation_id="42", message_id="a"),
                message(channel="telegram", conversation_id="43", message_id="a"),
                message(channel="telegram", conversation_id="42", message_id="b"),
            ]
        }
    )
    assert sorted(ChatSession.objects.values_list("channel", "external_id", "message_count")) == [
        ("telegram", "42", 2),
        ("telegram", "43", 1),
        ("whatsapp", "42", 1),
    ]


@pytest.mark.parametrize(
    "channel", ["web", "messenger", "api", "whatsapp", "instagram", "telegram"]
)
def test_every_channel_is_taken(channel):
    assert post(message(channel=channel)).status_code == 201
    assert ChatSession.objects.get().channel == channel


# --- Duplicates ---------------------------------------------------------------------------------


def test_a_replayed_message_is_stored_once_and_answers_200_duplicate():
    first = post(message())
    replay = post(message(text="the same message, sent again"))
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["results"][0]["status"] == "duplicate"
    assert replay.json()["results"][0]["session_id"] == first.json()["results"][0]["session_id"]
    assert (replay.json()["created"], replay.json()["duplicates"]) == (0, 1)
    assert ChatMessage.objects.get().text == "Hi, what does the premium plan cost?"
    assert ChatSession.objects.get().message_count == 1


def test_a_replayed_batch_adds_only_its_new_messages():
    post({"messages": [message(message_id="m1"), message(message_id="m2", role="ai")]})
    response = post(
        {
            "messages": [
                message(message_id="m1"),
                message(message_id="m2", role="ai"),
                message(message_id="m3"),
            ]
        }
    )
    assert response.status_code == 201
    assert [r["status"] for r in response.json()["results"]] == [
        "duplicate",
        "duplicate",
        "created",
    ]
    assert ChatSession.objects.get().message_count == ChatMessage.objects.count() == 3


def test_a_message_id_twice_in_one_batch_is_stored_once():
    response = post({"messages": [message(), message()]})
    assert [r["status"] for r in response.json()["results"]] == ["created", "duplicate"]
    assert ChatMessage.objects.count() == 1


def test_the_same_message_id_in_another_conversation_is_another_message():
    post(message(conversation_id="1"))
    assert post(message(conversation_id="2")).status_code == 201
    assert ChatMessage.objects.count() == 2


# --- Leads --------------------------------------------------------------------------------------


def test_a_lead_with_name_and_email_completes_the_session_and_queues_the_lead_webhook():
    endpoint = WebhookEndpoint.objects.create(name="n8n", url="http://127.0.0.1:9/lead")
    response = post(
        {
            "messages": [
                message(message_id="m1", text="I'm Ana, ana@example.com"),
                message(
                    message_id="m2",
                    role="ai",
                    text="Thanks Ana!",
                    lead={
                        "name": "  Ana   Silva ",
                        "email": "ana@example.com",
                        "phone": "+351 912 345 678",
                    },
                ),
            ]
        }
    )
    assert response.status_code == 201, response.content
    session = ChatSession.objects.get()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email, session.lead_phone) == (
        "Ana Silva",
        "ana@example.com",
        "+351912345678",  # E.164 (sessions_app.leads.normalize_phone)
    )
    assert session.delivery_state == DeliveryState.PENDING
    delivery = Delivery.objects.get()
    assert (delivery.endpoint, delivery.session) == (endpoint, session)
    data = delivery.payload["data"]
    assert data["session"]["channel"] == "whatsapp"
    assert data["lead"]["email"] == "ana@example.com"
    assert [m["text"] for m in data["transcript"]] == ["I'm Ana, ana@example.com", "Thanks Ana!"]


def test_lead_fields_may_come_in_pieces_and_empty_ones_are_left_out():
    post(message(message_id="m1", lead={"name": "Ana", "email": "", "phone": None}))
    session = ChatSession.objects.get()
    assert (session.lead_name, session.lead_email) == ("Ana", "")
    assert session.completion_status == CompletionStatus.IN_PROGRESS
    post(message(message_id="m2", lead={"email": "ana@example.com"}))
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.lead_name == "Ana"


def test_an_invalid_lead_email_refuses_the_message_naming_the_field_and_stores_nothing():
    response = post(message(lead={"name": "Ana", "email": "ana@"}))
    assert response.status_code == 400
    result = response.json()["results"][0]
    assert (result["status"], result["field"]) == ("error", "lead.email")
    assert response.json()["error"].startswith("lead.email: ")
    # The whole message is refused: no half-stored conversation waits for a fixed resend.
    assert nothing_stored()
    assert not Delivery.objects.exists()


def test_a_replayed_message_does_not_capture_its_lead_again():
    WebhookEndpoint.objects.create(name="n8n", url="http://127.0.0.1:9/lead")
    lead = {"name": "Ana", "email": "ana@example.com"}
    post(message(lead=lead))
    assert post(message(lead=lead)).status_code == 200
    assert Delivery.objects.count() == 1


def test_a_site_key_routes_the_lead_to_that_sites_endpoint():
    site, other = SiteFactory(), SiteFactory()
    mine = WebhookEndpoint.objects.create(name="mine", url="http://127.0.0.1:9/a", site=site)
    WebhookEndpoint.objects.create(name="other", url="http://127.0.0.1:9/b", site=other)
    post(message(site=site.public_key, lead={"name": "Ana", "email": "ana@example.com"}))
    session = ChatSession.objects.get()
    assert session.site == site
    assert [d.endpoint for d in Delivery.objects.all()] == [mine]


def test_an_unknown_site_key_is_refused_naming_site():
    response = post(message(site="no-such-site"))
    assert response.status_code == 400
    assert response.json()["results"][0]["field"] == "site"
    assert nothing_stored()


def test_a_conversation_keeps_the_site_it_started_with():
    site, other = SiteFactory(), SiteFactory()
    post(message(message_id="m1", site=site.public_key))
    response = post(message(message_id="m2", site=other.public_key))
    assert response.json()["results"][0]["field"] == "site"
    assert post(message(message_id="m3")).status_code == 201  # no key: the session's own
    session = ChatSession.objects.get()
    assert session.site == site
    assert list(session.messages.values_list("external_id", flat=True)) == ["m1", "m3"]


# --- created_at ---------------------------------------------------------------------------------


def test_without_created_at_the_message_is_stored_now():
    before = timezone.now()
    post(message())
    assert before <= ChatMessage.objects.get().created_at <= timezone.now()


def test_a_late_batch_with_older_times_widens_the_session_and_bumps_updated_at():
    post(message(message_id="m2", created_at="2026-11-30T10:00:00Z"))
    session = ChatSession.objects.get()
    first_update = session.updated_at
    post(
        {
            "messages": [
                message(message_id="m1", created_at="2026-11-30T09:00:00Z"),
                message(message_id="m3", role="ai", created_at="2026-11-30T11:00:00Z"),
            ]
        }
    )
    session.refresh_from_db()
    assert session.started_at == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert session.last_activity_at == datetime(2026, 11, 30, 11, tzinfo=UTC)
    # The changes feed reads updated_at: a message that arrives now is news now.
    assert session.updated_at > first_update and session.updated_at > session.last_activity_at
    assert list(session.messages.values_list("external_id", flat=True)) == ["m1", "m2", "m3"]


def test_a_time_a_little_ahead_of_the_server_clock_is_stored_as_now():
    ahead = (timezone.now() + timedelta(minutes=2)).isoformat()
    assert post(message(created_at=ahead)).status_code == 201
    assert ChatMessage.objects.get().created_at <= timezone.now()


@pytest.mark.parametrize(
    ("created_at", "fragment"),
    [
        ("2026-11-30T09:00:00", "no time zone"),
        ("yesterday", "Datetime has wrong format"),
        ("1970-01-01T00:00:00Z", "before 2000"),
        ("0001-01-01T00:00:00+05:00", "out of range"),
        (1764580000, "Datetime has wrong format"),
        ("far-future", "in the future"),
    ],
)
def test_a_bad_created_at_is_refused_naming_the_field(created_at, fragment):
    if created_at == "far-future":
        created_at = (timezone.now() + timedelta(minutes=10)).isoformat()
    response = post(message(created_at=created_at))
    assert response.status_code == 400
    result = response.json()["results"][0]
    assert result["field"] == "created_at"
    assert fragment in result["error"]
    assert nothing_stored()


# --- Bad input ----------------------------------------------------------------------------------


def test_an_unknown_role_is_a_400_naming_it():
    response = post(message(role="bot"))
    assert response.status_code == 400
    assert response.json()["error"] == "role: Unknown role 'bot': one of visitor, ai, agent."
    assert nothing_stored()


def test_the_system_role_is_leadchats_own_and_refused():
    response = post(message(role="system"))
    assert response.json()["results"][0]["field"] == "role"
    assert nothing_stored()


def test_an_unknown_channel_is_a_400_naming_it():
    response = post(message(channel="sms"))
    assert response.status_code == 400
    assert response.json()["error"] == (
        "channel: Unknown channel 'sms': one of web, messenger, api, whatsapp, instagram, telegram."
    )
    assert nothing_stored()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"channel": None}, "channel"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"conversation_id": "   "}, "conversation_id"),
        ({"conversation_id": "x" * 256}, "conversation_id"),
        ({"conversation_id": {"id": 1}}, "conversation_id"),
        ({"message_id": ""}, "message_id"),
        ({"message_id": True}, "message_id"),
        ({"text": ""}, "text"),
        ({"text": "x" * 20_001}, "text"),
        ({"text": ["hi"]}, "text"),
        ({"metadata": [1]}, "metadata"),
        ({"metadata": "x"}, "metadata"),
        ({"lead": "ana@example.com"}, "lead"),
        ({"lead": {"name": ""}, "lead_name": "x"}, "lead_name"),
        ({"lead": {"mail": "ana@example.com"}}, "lead.mail"),
        ({"lead": {"phone": "1" * 51}}, "lead.phone"),
        ({"lead": {"name": "A" * 201, "email": "a@example.com"}}, "lead.name"),
        ({"conversationId": "42"}, "conversationId"),
        ({"site": "k" * 65}, "site"),
    ],
)
def test_each_bad_field_is_refused_by_name(fields, field):
    response = post(message(**fields))
    assert response.status_code == 400, response.content
    assert response.json()["results"][0]["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")
    assert nothing_stored()


@pytest.mark.parametrize("missing", ["channel", "conversation_id", "message_id", "role", "text"])
def test_each_required_field_is_named_when_missing(missing):
    body = message()
    del body[missing]
    response = post(body)
    assert response.json()["results"][0]["field"] == missing
    assert "required" in response.json()["results"][0]["error"]
    assert nothing_stored()


def test_a_malformed_message_among_good_ones_loses_none_of_them():
    response = post(
        {
            "messages": [
                message(message_id="m1"),
                message(message_id="m2", role="bot"),
                ["not", "a", "message"],
                message(message_id="m4", lead={"email": "not-an-email"}),
                message(message_id="m5", role="ai", text="Still here."),
            ]
        }
    )
    assert response.status_code == 400
    body = response.json()
    assert [(r["status"], r["field"]) for r in body["results"]] == [
        ("created", None),
        ("error", "role"),
        ("error", None),
        ("error", "lead.email"),
        ("created", None),
    ]
    assert body["results"][2]["error"] == "Invalid data. Expected a dictionary, but got list."
    assert (body["created"], body["duplicates"], body["refused"]) == (2, 0, 3)
    assert body["error"].startswith(
        "3 of 5 messages refused (the others are stored); the first: messages[1].role: "
    )
    session = ChatSession.objects.get()
    assert list(session.messages.values_list("external_id", flat=True)) == ["m1", "m5"]
    assert session.message_count == 2
    # Resending the fixed batch is safe: the stored ones are duplicates.
    fixed = post(
        {
            "messages": [
                message(message_id="m1"),
                message(message_id="m2", role="agent"),
                message(message_id="m5", role="ai", text="Still here."),
            ]
        }
    )
    assert [r["status"] for r in fixed.json()["results"]] == ["duplicate", "created", "duplicate"]
    session.refresh_from_db()
    assert session.message_count == 3


def test_a_message_for_a_session_in_the_trash_is_refused_and_the_trash_kept():
    post(message(message_id="m1"))
    session = ChatSession.objects.get()
    session_delete(session=session, by=None)
    response = post(message(message_id="m2"))
    assert response.status_code == 400
    assert response.json()["results"][0]["field"] == "conversation_id"
    assert "trash" in response.json()["results"][0]["error"]
    session.refresh_from_db()
    assert session.is_deleted and session.message_count == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"channel": "unterminated', "application/json", 400, "JSON parse error"),
        (b'"just a string"', "application/json", 400, "one message object"),
        (b"[]", "application/json", 400, "one message object"),
        (b'{"messages": []}', "application/json", 400, "1 to 100"),
        (b'{"messages": {"a": 1}}', "application/json", 400, "1 to 100"),
        (b'{"messages": [], "channel": "whatsapp"}', "application/json", 400, "channel: a batch"),
        (b'{"text": "bo\\u0000om"}', "application/json", 400, "NUL"),
        (b"channel=whatsapp", "application/x-www-form-urlencoded", 415, "Unsupported media"),
    ],
)
def test_a_bad_body_is_a_readable_4xx_and_stores_nothing(body, content_type, status, fragment):
    response = post(body, content_type=content_type)
    assert response.status_code == status, response.content
    assert fragment in response.json()["error"]
    assert nothing_stored()


def test_a_number_too_large_for_a_float_in_metadata_is_400_not_a_500():
    response = post(
        '{"channel": "whatsapp", "conversation_id": "1", "message_id": "1", "role": "visitor", '
        '"text": "x", "metadata": {"n": 1e400}}'
    )
    assert response.status_code == 400
    assert "metadata.n: the number is too large." in response.json()["error"]
    assert nothing_stored()


def test_a_batch_of_100_is_taken():
    body = {"messages": [message(message_id=f"m{i}") for i in range(100)]}
    response = post(body)
    assert response.status_code == 201
    assert response.json()["created"] == 100
    assert ChatSession.objects.get().message_count == 100


def test_a_batch_over_100_messages_is_413_and_stores_nothing():
    response = post({"messages": [message(message_id=f"m{i}") for i in range(101)]})
    assert response.status_code == 413
    assert "at most 100 messages (101 sent)" in response.json()["error"]
    assert nothing_stored()


def test_a_body_over_1_mb_is_413_and_stores_nothing():
    body = json.dumps(message(metadata={"blob": "x" * (1024 * 1024)}))
    response = post(body)
    assert response.status_code == 413
    assert "1048576 bytes" in response.json()["error"]
    assert nothing_stored()


def test_the_view_refuses_a_body_over_1_mb_on_its_own_too():
    """Without the body-limit middleware in front (a deployment that drops it), the view's own
    check answers the same 413."""
    from rest_framework.test import APIRequestFactory

    from sessions_app.api.ingest import IngestMessagesView

    body = json.dumps(message(metadata={"blob": "x" * (1024 * 1024)}))
    request = APIRequestFactory().post(
        URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {KEY}"
    )
    response = IngestMessagesView.as_view()(request)
    assert response.status_code == 413
    assert response.data == {"error": "The body is larger than 1 MB."}
    assert nothing_stored()


def test_a_body_just_under_1_mb_is_taken():
    body = message(metadata={"blob": ""})
    body["metadata"]["blob"] = "x" * (1024 * 1024 - len(json.dumps(body)))
    assert len(json.dumps(body)) == 1024 * 1024
    assert post(body).status_code == 201


# --- Schema ---------------------------------------------------------------------------------------


def test_openapi_schema_documents_the_endpoint_its_body_and_its_errors(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/ingest/messages/"]["post"]
    assert operation["operationId"] == "ingest_messages"
    assert set(operation["responses"]) == {
        "200",
        "201",
        "400",
        "401",
        "403",
        "413",
        "414",  # leadchat.schema: every operation can get it from the server
        "415",
        "503",
    }
    assert operation["security"] == [{"IngestBearer": []}]
    assert schema["components"]["securitySchemes"]["IngestBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "INGEST_API_KEY, for POST /api/ingest/messages/ only.",
    }
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    components = schema["components"]["schemas"]
    one_of = components[body["$ref"].rsplit("/", 1)[1]]["oneOf"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in one_of] == ["IngestMessageIn", "IngestBatchIn"]
    item = components["IngestMessageIn"]
    assert set(item["required"]) == {"channel", "conversation_id", "message_id", "role", "text"}
    assert set(item["properties"]) == {
        "channel",
        "conversation_id",
        "message_id",
        "role",
        "text",
        "created_at",
        "metadata",
        "lead",
        "site",
    }
    assert item["properties"]["created_at"]["format"] == "date-time"

    def enum(prop: dict) -> list[str]:
        return components[prop["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]

    assert enum(item["properties"]["role"]) == ["visitor", "ai", "agent"]
    assert enum(item["properties"]["channel"]) == [
        "web",
        "messenger",
        "api",
        "whatsapp",
        "instagram",
        "telegram",
    ]
    batch = components["IngestBatchIn"]["properties"]["messages"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 100)
    answer = operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/IngestAnswer")
    result = components["IngestResult"]["properties"]
    assert set(result) == {"index", "message_id", "status", "session_id", "field", "error"}
    status = components[result["status"]["$ref"].rsplit("/", 1)[1]]
    assert status["enum"] == ["created", "duplicate", "error"]
