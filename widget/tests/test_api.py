"""The public widget API (SPEC 4.2): happy paths and every refusal, none of them a 500."""

import uuid

import pytest
from django.db import connection

from sessions_app.models import ChatMessage, ChatSession, CompletionStatus
from sessions_app.services import session_delete
from widget import backends
from widget.backends import AgentReply
from widget.backends.fake import FakeBackend
from widget.tests.conftest import ORIGIN
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


def test_session_start_returns_ids_status_and_greeting(site, widget_client):
    response = widget_client.start(
        referrer="https://www.google.com/",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="spring",
        HTTP_USER_AGENT="Mozilla/5.0 test",
    )

    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"session_id", "visitor_token", "completion_status", "messages"}
    assert data["completion_status"] == "in_progress"
    assert [(m["role"], m["text"]) for m in data["messages"]] == [("ai", site.greeting)]
    session = ChatSession.objects.get(public_id=data["session_id"])
    assert session.site == site
    assert session.page_url == f"{ORIGIN}/pricing"
    assert (session.utm_source, session.utm_medium, session.utm_campaign) == (
        "google",
        "cpc",
        "spring",
    )
    # Only the hash is stored.
    assert session.user_agent == "Mozilla/5.0 test"
    # Only the hash is stored.
    assert data["visitor_token"] not in session.visitor_token_hash


def test_session_start_drops_non_http_urls(site, widget_client):
    response = widget_client.start(page_url="javascript:alert(1)", referrer="data:text/html,x")

    session = ChatSession.objects.get(public_id=response.json()["session_id"])
    assert (session.page_url, session.referrer) == ("", "")


def test_session_start_drops_urls_without_a_host(site, widget_client):
    # A prefix check kept these, and the dashboard then had a "link" that leads nowhere.
    response = widget_client.start(page_url="http://", referrer="https://?q=1")

    session = ChatSession.objects.get(public_id=response.json()["session_id"])
    assert (session.page_url, session.referrer) == ("", "")


def test_session_start_keeps_http_urls_whatever_the_scheme_case(site, widget_client):
    response = widget_client.start(page_url="HTTPS://Example.com/a", referrer="http://r.example/")

    session = ChatSession.objects.get(public_id=response.json()["session_id"])
    assert (session.page_url, session.referrer) == ("HTTPS://Example.com/a", "http://r.example/")


def test_message_post_stores_visitor_message_and_reply(site, widget_client):
    session_id, token = widget_client.started()

    response = widget_client.say(session_id, token, "I'd like a quote")

    assert response.status_code == 201
    data = response.json()
    assert [m["role"] for m in data["messages"]] == ["visitor", "ai"]
    assert data["messages"][0]["text"] == "I'd like a quote"
    assert data["session"] == {
        "completion_status": "in_progress",
        "lead": {"name": "", "email": ""},
    }
    assert ChatMessage.objects.filter(session__public_id=session_id).count() == 3


def test_message_post_reports_completed_lead(site, widget_client):
    session_id, token = widget_client.started()

    response = widget_client.say(session_id, token, "I'm Ana Silva, ana@example.com")

    assert response.json()["session"] == {
        "completion_status": "complete",
        "lead": {"name": "Ana Silva", "email": "ana@example.com"},
    }


def test_transcript_returns_the_whole_conversation(site, widget_client):
    session_id, token = widget_client.started()
    widget_client.say(session_id, token, "Hello")

    response = widget_client.transcript(session_id, token)

    assert response.status_code == 200
    data = response.json()
    assert data["session_id"] == session_id
    assert [m["role"] for m in data["messages"]] == ["ai", "visitor", "ai"]
    assert data["lead"] == {"name": "", "email": ""}


def test_requests_without_origin_header_are_served(site, widget_client):
    # Server-to-server clients send no Origin; the key and the token protect them.
    session_id, token = widget_client.started(origin=None)

    assert widget_client.say(session_id, token, "Hi", origin=None).status_code == 201


def test_own_origin_is_allowed_for_the_iframe(site, widget_client, settings):
    settings.PUBLIC_BASE_URL = "https://chat.leadchat.test"

    response = widget_client.start(origin="https://chat.leadchat.test")

    assert response.status_code == 201


def _assert_error(response, status, fragment):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert fragment in response.json()["error"]


def test_unknown_site_key_is_404(site, widget_client):
    _assert_error(widget_client.start(site_key="nope"), 404, "Unknown site key")


def test_inactive_site_is_refused(widget_client):
    SiteFactory(public_key="off", allowed_origins=[ORIGIN], is_active=False)

    _assert_error(widget_client.start(site_key="off"), 403, "switched off")
    assert not ChatSession.objects.exists()


def test_messages_refused_once_site_is_switched_off(site, widget_client):
    session_id, token = widget_client.started()
    site.is_active = False
    site.save()

    _assert_error(widget_client.say(session_id, token, "Hi"), 403, "switched off")


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "https://landing.example.com.evil.io"]
)
def test_foreign_origin_is_refused(site, widget_client, origin):
    _assert_error(widget_client.start(origin=origin), 403, "not allowed")
    assert not ChatSession.objects.exists()


def test_foreign_origin_cannot_post_to_existing_session(site, widget_client):
    session_id, token = widget_client.started()

    response = widget_client.say(session_id, token, "Hi", origin="https://evil.example")

    _assert_error(response, 403, "not allowed")
    assert ChatMessage.objects.count() == 1


def test_missing_token_is_refused(site, widget_client):
    session_id, _ = widget_client.started()

    _assert_error(widget_client.say(session_id, None, "Hi"), 403, "X-Visitor-Token")
    _assert_error(widget_client.transcript(session_id, None), 403, "X-Visitor-Token")


def test_wrong_token_is_refused(site, widget_client):
    session_id, token = widget_client.started()

    _assert_error(widget_client.say(session_id, token + "x", "Hi"), 403, "does not match")
    _assert_error(widget_client.transcript(session_id, "wrong"), 403, "does not match")
    assert ChatMessage.objects.count() == 1


def test_token_of_another_session_is_refused(site, widget_client):
    session_id, _ = widget_client.started()
    _, other_token = widget_client.started()

    _assert_error(widget_client.say(session_id, other_token, "Hi"), 403, "does not match")


# A well-formed id no session has, written out: a random one here would give each xdist worker a
# different test id, and xdist refuses a collection that differs between workers.
@pytest.mark.parametrize("session_id", ["7a1c0e52-3f4b-4d8e-9b6a-2c5d8e1f0a93", "not-a-uuid", "1"])
def test_unknown_session_is_404(site, widget_client, session_id):
    _assert_error(widget_client.say(session_id, "token", "Hi"), 404, "does not exist")
    _assert_error(widget_client.transcript(session_id, "token"), 404, "does not exist")


def test_deleted_session_is_404_and_keeps_its_messages(site, widget_client):
    session_id, token = widget_client.started()
    session_delete(session=ChatSession.objects.get(public_id=session_id), by=None)

    _assert_error(widget_client.say(session_id, token, "Hi"), 404, "does not exist")
    assert ChatMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "hello"),
        ("application/x-www-form-urlencoded", "text=hello"),
        ("multipart/form-data; boundary=x", "--x--"),
    ],
)
def test_non_json_body_is_415(site, widget_client, content_type, body):
    session_id, token = widget_client.started()

    response = widget_client.raw.post(
        f"/api/widget/sessions/{session_id}/messages/",
        body,
        content_type=content_type,
        HTTP_ORIGIN=ORIGIN,
        HTTP_X_VISITOR_TOKEN=token,
    )

    _assert_error(response, 415, "Unsupported media type")
    assert ChatMessage.objects.count() == 1


def test_malformed_json_is_400(site, widget_client):
    response = widget_client.raw.post(
        "/api/widget/sessions/", "{not json", content_type="application/json", HTTP_ORIGIN=ORIGIN
    )

    _assert_error(response, 400, "JSON parse error")


@pytest.mark.parametrize("body", [[], "text", 5, None])
def test_json_that_is_not_an_object_is_400(site, widget_client, body):
    session_id, token = widget_client.started()

    response = widget_client.raw.post(
        f"/api/widget/sessions/{session_id}/messages/",
        body,
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        HTTP_X_VISITOR_TOKEN=token,
    )

    assert response.status_code == 400
    assert response.json()["error"]


def test_message_over_4000_characters_is_400(site, widget_client):
    session_id, token = widget_client.started()

    _assert_error(widget_client.say(session_id, token, "x" * 4001), 400, "4,000 characters")
    assert widget_client.say(session_id, token, "x" * 4000).status_code == 201


@pytest.mark.parametrize("text", ["", "   \n  "])
def test_empty_message_is_400(site, widget_client, text):
    session_id, token = widget_client.started()

    _assert_error(widget_client.say(session_id, token, text), 400, "The message is empty")


def test_missing_text_field_is_400(site, widget_client):
    session_id, token = widget_client.started()
    response = widget_client.raw.post(
        f"/api/widget/sessions/{session_id}/messages/",
        {"message": "hi"},
        content_type="application/json",
        HTTP_X_VISITOR_TOKEN=token,
    )

    _assert_error(response, 400, "text: The message text is missing")


def test_null_character_in_message_is_400(site, widget_client):
    session_id, token = widget_client.started()

    response = widget_client.say(session_id, token, "hi\x00there")

    assert response.status_code == 400
    assert ChatMessage.objects.count() == 1


def test_body_over_the_cap_is_413(site, widget_client, settings):
    settings.WIDGET_MAX_BODY_BYTES = 1000
    session_id, token = widget_client.started()

    _assert_error(widget_client.say(session_id, token, "x" * 2000), 413, "larger than 1000")


def test_oversize_fields_in_session_start_are_400(site, widget_client):
    _assert_error(widget_client.start(utm_source="x" * 201), 400, "utm_source")
    _assert_error(widget_client.start(site_key="k" * 65), 400, "site_key")


def test_new_sessions_per_ip_are_rate_limited(site, widget_client, settings):
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 2
    widget_client.started()
    widget_client.started()

    response = widget_client.start()

    _assert_error(response, 429, "Too many requests")
    assert 3000 < int(response["Retry-After"]) <= 3600
    assert ChatSession.objects.count() == 2


def test_messages_per_session_are_rate_limited(site, widget_client, settings):
    settings.WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = 2
    session_id, token = widget_client.started()
    widget_client.say(session_id, token, "one")
    widget_client.say(session_id, token, "two")

    response = widget_client.say(session_id, token, "three")

    _assert_error(response, 429, "Too many requests")
    assert 0 < int(response["Retry-After"]) <= 60
    assert not ChatMessage.objects.filter(text="three").exists()
    # Another session of the same visitor IP is not held back by this one's limit.
    other_id, other_token = widget_client.started()
    assert widget_client.say(other_id, other_token, "hello").status_code == 201


def test_wrong_token_does_not_use_up_the_session_limit(site, widget_client, settings):
    settings.WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = 1
    session_id, token = widget_client.started()
    for _ in range(3):
        widget_client.say(session_id, "guess", "spam")

    assert widget_client.say(session_id, token, "real").status_code == 201


def test_all_widget_requests_per_ip_are_rate_limited(site, widget_client, settings):
    settings.WIDGET_REQUESTS_PER_IP_PER_MINUTE = 3
    session_id, token = widget_client.started()
    widget_client.transcript(session_id, token)
    widget_client.transcript(session_id, token)

    _assert_error(widget_client.transcript(session_id, token), 429, "Too many requests")


def test_rate_limit_ignores_spoofed_forwarded_for_by_default(site, widget_client, settings):
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 1
    settings.TRUSTED_PROXY_COUNT = 0
    widget_client.started(HTTP_X_FORWARDED_FOR="1.1.1.1")

    assert widget_client.start(HTTP_X_FORWARDED_FOR="2.2.2.2").status_code == 429


def test_rate_limit_uses_forwarded_for_behind_trusted_proxy(site, widget_client, settings):
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 1
    settings.TRUSTED_PROXY_COUNT = 1
    widget_client.started(HTTP_X_FORWARDED_FOR="9.9.9.9, 1.1.1.1")

    # The client forged the left part; the proxy appended the real address on the right.
    assert widget_client.start(HTTP_X_FORWARDED_FOR="8.8.8.8, 1.1.1.1").status_code == 429
    assert widget_client.start(HTTP_X_FORWARDED_FOR="2.2.2.2").status_code == 201


def test_cors_preflight_allows_site_origin_only(site, client):
    def preflight(origin):
        return client.options(
            "/api/widget/sessions/",
            HTTP_ORIGIN=origin,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-visitor-token",
        )

    allowed = preflight(ORIGIN)
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-visitor-token" in allowed["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in preflight("https://evil.example")


def test_cors_not_opened_for_inactive_site_origin(client):
    SiteFactory(public_key="off", allowed_origins=["https://off.example"], is_active=False)

    response = client.options(
        "/api/widget/sessions/",
        HTTP_ORIGIN="https://off.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )

    assert "Access-Control-Allow-Origin" not in response


def test_cors_origins_are_cached_and_refreshed_when_a_site_changes(
    site, client, django_assert_num_queries
):
    def preflight(origin):
        return client.options(
            "/api/widget/sessions/", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )

    assert preflight(ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN
    with django_assert_num_queries(0):  # answered from the cache
        assert preflight(ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN

    # Saving a site forgets the cached origins: a new one is open at once, a removed one shut.
    other = SiteFactory(public_key="new", allowed_origins=["https://new.example"])
    assert preflight("https://new.example")["Access-Control-Allow-Origin"] == "https://new.example"
    other.is_active = False
    other.save()
    assert "Access-Control-Allow-Origin" not in preflight("https://new.example")
    other.delete()
    site.allowed_origins = []
    site.save()
    assert "Access-Control-Allow-Origin" not in preflight(ORIGIN)


@pytest.mark.parametrize("how", ["trash", "erase"])
def test_session_removed_while_the_agent_answers_is_404_not_500(site, widget_client, how):
    session_id, token = widget_client.started()

    class Remover(FakeBackend):
        def reply(self, conversation):
            session = ChatSession.objects.get(public_id=session_id)
            if how == "trash":
                session_delete(session=session, by=None)
            else:
                session.delete()
            return AgentReply(text="Too late")

    with backends.override("scripted", Remover()):
        response = widget_client.say(session_id, token, "Hello?")

    _assert_error(response, 404, "does not exist")


def test_completed_session_reopened_by_message_stays_complete(site, widget_client):
    session_id, token = widget_client.started()
    widget_client.say(session_id, token, "I'm Ana, ana@example.com")

    response = widget_client.say(session_id, token, "One more thing")

    assert response.json()["session"]["completion_status"] == CompletionStatus.COMPLETE


def test_schema_documents_widget_endpoints_and_errors(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    start = paths["/api/widget/sessions/"]["post"]
    assert {"201", "400", "403", "404", "413", "415", "429"} <= set(start["responses"])
    post = paths["/api/widget/sessions/{session_id}/messages/"]["post"]
    assert any(p["name"] == "X-Visitor-Token" and p["in"] == "header" for p in post["parameters"])
    assert "security" not in start or start["security"] in ([], [{}])
    assert "get" in paths["/api/widget/sessions/{session_id}/"]


def test_nul_characters_in_page_context_are_dropped(site, widget_client):
    response = widget_client.start(utm_source="goo\x00gle")

    assert response.status_code == 201
    assert ChatSession.objects.get().utm_source == "google"


def test_unsupported_method_is_405_before_any_check(site, client):
    response = client.generic("TRACE", f"/api/widget/sessions/{uuid.uuid4()}/messages/")

    assert response.status_code == 405
    assert response.json()["error"]


def test_message_round_trip_query_count_is_fixed(
    site, widget_client, django_assert_num_queries, django_assert_max_num_queries
):
    session_id, token = widget_client.started()
    widget_client.say(session_id, token, "I'd like a quote")
    for n in range(12):  # a long transcript: the scripted agent still reads a short window
        widget_client.say(session_id, token, f"Question {n}?")

    # Session + site; the visitor's message; the recent turns; the reply. Each message is one
    # statement on PostgreSQL, a transaction of four elsewhere (begin, conditional update,
    # insert, commit). CORS origins are cached.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 10):
        response = widget_client.say(session_id, token, "What does it cost?")
    assert response.status_code == 201

    # A lead adds its own locked update, the webhook endpoints and the outbox rows, in one
    # transaction with the reply.
    with django_assert_max_num_queries(21):
        response = widget_client.say(session_id, token, "I'm Ana, ana@example.com")
    assert response.json()["session"]["completion_status"] == CompletionStatus.COMPLETE
