"""The n8n backend against what a real Chat Trigger answers, on a loopback server.

The shapes are n8n 2.x's: a JSON `{output}` ("When Last Node Finishes"), NDJSON chunks
("Streaming"), Basic Auth (the Chat Trigger's only credential leadchat can use) and the 404 a
Chat Trigger gives while it is not public or its workflow is not published.
"""

import base64
import json

import pytest
from django.core.exceptions import ValidationError

from leadchat.testing import LoopbackServer, Reply
from sessions_app.delivery.webhooks import lead_payload
from sessions_app.models import AutomationError, ChatMessage, ChatSession
from widget.services import FALLBACK_REPLY
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"


@pytest.fixture(autouse=True)
def _small_budget(settings):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5


def chat_trigger_site(url, secret="", key="n8n-chat", **config):
    return SiteFactory(
        public_key=key,
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="n8n",
        agent_config={"webhook_url": f"{url}/webhook/0b6f/chat", **config},
        agent_secret=secret,
    )


def chat(widget_client, *texts, **start):
    session_id, token = widget_client.started(site_key="n8n-chat", **start)
    return session_id, [widget_client.say(session_id, token, text) for text in texts]


def chunk(kind, content=None, node="a1", run=0):
    """One line of n8n's streaming answer, as its webhook writes it."""
    value = {
        "type": kind,
        "metadata": {
            "nodeId": node,
            "nodeName": "AI Agent",
            "itemIndex": 0,
            "runIndex": run,
            "timestamp": 1764590000000,
        },
    }
    if content is not None:
        value["content"] = content
    return json.dumps(value) + "\n"


def only_error(session_id):
    [error] = AutomationError.objects.filter(session__public_id=session_id)
    return error


def test_plain_json_answer_is_the_reply(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "We ship to Spain."})) as server:
        chat_trigger_site(server.url)
        _, [response] = chat(widget_client, "Do you ship to Spain?")

    assert response.json()["messages"][1]["text"] == "We ship to Spain."
    [request] = server.requests
    assert request.path == "/webhook/0b6f/chat"
    assert "authorization" not in request.headers  # no secret, no credentials


def test_streaming_chunks_are_joined_into_one_reply(widget_client):
    stream = (
        chunk("begin")
        + chunk("item", "We ship")
        + chunk("item", " to Spain,")
        + chunk("item", ' "free" over 50 €.\nAnything else?')
        + chunk("end")
    )
    headers = {"Content-Type": "application/json; charset=utf-8"}
    with LoopbackServer(lambda r: Reply(200, stream, headers)) as server:
        chat_trigger_site(server.url)
        session_id, [response] = chat(widget_client, "Do you ship to Spain?")

    expected = 'We ship to Spain, "free" over 50 €.\nAnything else?'
    assert response.json()["messages"][1]["text"] == expected
    assert ChatMessage.objects.get(session__public_id=session_id, role="ai", text=expected)
    assert not AutomationError.objects.exists()


def test_streaming_runs_of_two_nodes_become_paragraphs(widget_client):
    stream = (
        chunk("begin", node="a1")
        + chunk("item", "First answer.", node="a1")
        + chunk("end", node="a1")
        + chunk("begin", node="a2")
        + chunk("item", "Second ", node="a2")
        + chunk("item", "answer.", node="a2")
        + chunk("end", node="a2")
    )
    with LoopbackServer(lambda r: Reply(200, stream)) as server:
        chat_trigger_site(server.url)
        _, [response] = chat(widget_client, "hi")

    assert response.json()["messages"][1]["text"] == "First answer.\n\nSecond answer."


def test_streaming_error_chunk_falls_back_with_n8n_words(widget_client):
    stream = chunk("begin") + chunk("error", "The model is overloaded") + chunk("end")
    with LoopbackServer(lambda r: Reply(200, stream)) as server:
        chat_trigger_site(server.url)
        session_id, [response] = chat(widget_client, "hi")

    assert response.json()["messages"][1]["text"].startswith(FALLBACK_REPLY)
    error = only_error(session_id)
    assert "failed while streaming: The model is overloaded" in error.message
    assert error.details["permanent"] is False


def test_stream_without_text_is_an_answer_without_output(widget_client):
    with LoopbackServer(lambda r: Reply(200, chunk("begin") + chunk("end"))) as server:
        chat_trigger_site(server.url)
        session_id, [response] = chat(widget_client, "hi")

    assert response.json()["messages"][1]["text"].startswith(FALLBACK_REPLY)
    assert "without a text `output`" in only_error(session_id).message


def test_empty_answer_says_what_streams(widget_client):
    with LoopbackServer(lambda r: Reply(200, b"")) as server:
        chat_trigger_site(server.url)
        session_id, _ = chat(widget_client, "hi")

    error = only_error(session_id)
    assert "empty body" in error.message and "When Last Node Finishes" in error.message
    assert error.details["permanent"] is True


def test_neither_json_nor_chunks_is_still_malformed_json(widget_client):
    with LoopbackServer(lambda r: Reply(200, '{"output": "cut off')) as server:
        chat_trigger_site(server.url)
        session_id, _ = chat(widget_client, "hi")

    error = only_error(session_id)
    assert "malformed JSON" in error.message
    assert error.details["response_body"] == '{"output": "cut off'


def test_basic_auth_sends_user_and_password_from_the_environment(widget_client, monkeypatch):
    monkeypatch.setenv("LEADCHAT_AGENT_N8N_CHAT", "pässword:with-colon")
    with LoopbackServer(lambda r: Reply(200, {"output": "ok"})) as server:
        chat_trigger_site(
            server.url, secret="env:LEADCHAT_AGENT_N8N_CHAT", basic_auth_user="leadchat"
        )
        chat(widget_client, "hi")

    scheme, token = server.requests[0].headers["authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "leadchat:pässword:with-colon"


def test_basic_auth_refused_names_the_settings_to_check(widget_client):
    with LoopbackServer(lambda r: Reply(401, "Authorization is required!")) as server:
        chat_trigger_site(server.url, secret="wrong", basic_auth_user="leadchat")
        session_id, [response] = chat(widget_client, "hi")

    assert response.json()["messages"][1]["text"].startswith(FALLBACK_REPLY)
    error = only_error(session_id)
    assert "HTTP 401" in error.message and "basic_auth_user" in error.message
    assert error.details["permanent"] is True


def test_404_says_the_chat_must_be_public_and_published(widget_client):
    body = {"code": 404, "message": 'The requested webhook "POST 0b6f/chat" is not registered.'}
    with LoopbackServer(lambda r: Reply(404, body)) as server:
        chat_trigger_site(server.url)
        session_id, [response] = chat(widget_client, "hi")

    assert response.json()["messages"][1]["text"].startswith(FALLBACK_REPLY)
    error = only_error(session_id)
    assert "HTTP 404" in error.message
    assert '"Make Chat Publicly Available"' in error.message
    assert "workflow is published" in error.message
    assert error.details["permanent"] is True
    assert "is not registered" in error.details["response_body"]


def test_legacy_auth_header_config_still_sends_its_header(widget_client):
    # For a Webhook node's Header Auth or a proxy in front of n8n; sites set up before Basic
    # Auth keep working unchanged.
    with LoopbackServer(lambda r: Reply(200, {"output": "ok"})) as server:
        chat_trigger_site(server.url, secret="s3cret", auth_header="X-N8N-Auth")
        chat(widget_client, "hi")

    headers = server.requests[0].headers
    assert headers["x-n8n-auth"] == "s3cret"
    assert "authorization" not in headers


def test_earlier_turns_go_in_metadata_history(widget_client):
    answers = iter([{"output": "Hi! What do you need?"}, {"output": "Noted."}])
    with LoopbackServer(lambda r: Reply(200, next(answers))) as server:
        chat_trigger_site(server.url)
        session_id, _ = chat(widget_client, "Pricing please", "For 5 seats")

    first, second = (r.json() for r in server.requests)
    greeting = ChatMessage.objects.filter(session__public_id=session_id).order_by("id")[0]
    assert first["metadata"]["history"] == [{"role": "ai", "text": greeting.text}]
    assert second["chatInput"] == "For 5 seats"
    assert second["metadata"]["history"] == [
        {"role": "ai", "text": greeting.text},
        {"role": "visitor", "text": "Pricing please"},
        {"role": "ai", "text": "Hi! What do you need?"},
    ]
    assert first["sessionId"] == second["sessionId"] == session_id


def test_agent_utm_is_named_as_in_the_lead_webhook(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "ok"})) as server:
        chat_trigger_site(server.url)
        session_id, _ = chat(widget_client, "hi", utm_source="ads", utm_campaign="spring")

    sent = server.requests[0].json()["metadata"]["utm"]
    assert sent == {"source": "ads", "medium": "", "campaign": "spring", "term": "", "content": ""}
    session = ChatSession.objects.get(public_id=session_id)
    webhook = lead_payload(session=session, event_id="evt_1", occurred_at=session.started_at)
    assert webhook["data"]["session"]["utm"] == sent


@pytest.mark.parametrize(
    ("config", "secret", "problem"),
    [
        ({"basic_auth_user": "lead:chat"}, "pw", 'without ":"'),
        ({"basic_auth_user": ""}, "pw", 'without ":"'),
        ({"basic_auth_user": "leadchat", "auth_header": "X-A"}, "pw", "not both"),
        ({"basic_auth_user": "leadchat"}, "", "password as the agent secret"),
    ],
)
def test_site_refuses_basic_auth_that_cannot_work(config, secret, problem):
    site = chat_trigger_site("https://n8n.example.com", secret=secret, **config)
    with pytest.raises(ValidationError) as caught:
        site.clean()
    assert problem in str(caught.value.message_dict["agent_config"])


def test_site_accepts_basic_auth_and_the_legacy_header():
    chat_trigger_site("https://n8n.example.com", secret="pw", basic_auth_user="leadchat").clean()
    chat_trigger_site(
        "https://n8n.example.com", secret="pw", key="legacy", auth_header="X-N8N-Auth"
    ).clean()
