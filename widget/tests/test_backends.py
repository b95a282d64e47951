"""Agent backends against real HTTP servers on loopback, through the real widget API.

Each failure case checks the three promises: the visitor gets the fallback reply within the
time budget, an AutomationError(source=agent) is recorded with the session, and the visitor's
message is stored.
"""

import json
import time

import pytest

from leadchat.testing import LoopbackServer, Reply, free_port
from sessions_app.models import AutomationError, ChatMessage, ChatSession, CompletionStatus
from widget.services import FALLBACK_REPLY
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"
BUDGET = 1.0


@pytest.fixture(autouse=True)
def _small_budget(settings):
    settings.WIDGET_AGENT_TIMEOUT = BUDGET
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5


def n8n_site(url, **config):
    return SiteFactory(
        public_key="n8n-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="n8n",
        agent_config={"webhook_url": f"{url}/webhook/chat", "auth_header": "X-N8N-Auth", **config},
        agent_secret="n8n-header-secret",
    )


def openai_site(url, secret="sk-test-123"):
    return SiteFactory(
        public_key="openai-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="openai",
        agent_config={
            "base_url": f"{url}/v1",
            "model": "test-model",
            "system_prompt": "Be {site}.",
        },
        agent_secret=secret,
    )


def chat(widget_client, site_key, *texts):
    session_id, token = widget_client.started(site_key=site_key)
    responses = [widget_client.say(session_id, token, text) for text in texts]
    return session_id, responses


# --- n8n -------------------------------------------------------------------------------------


def test_n8n_reply_comes_from_output_with_header_auth(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "Hello from n8n!"})) as server:
        n8n_site(server.url)
        session_id, [response] = chat(widget_client, "n8n-site", "Do you ship to Spain?")

    assert response.status_code == 201
    assert response.json()["messages"][1]["text"] == "Hello from n8n!"
    [request] = server.requests
    assert request.path == "/webhook/chat"
    assert request.headers["x-n8n-auth"] == "n8n-header-secret"
    body = request.json()
    assert body["action"] == "sendMessage"
    assert body["sessionId"] == session_id
    assert body["chatInput"] == "Do you ship to Spain?"
    assert body["metadata"]["page_url"] == f"{ORIGIN}/pricing"
    ai = ChatMessage.objects.get(session__public_id=session_id, text="Hello from n8n!")
    assert ai.metadata["backend"] == "n8n"
    assert isinstance(ai.metadata["latency_ms"], int)
    assert not AutomationError.objects.exists()


def test_n8n_list_answer_and_lead_fields_are_used(widget_client):
    answer = [{"output": "Thanks Ana!", "lead": {"name": "Ana", "email": "ana@example.com"}}]
    with LoopbackServer(lambda r: Reply(200, answer)) as server:
        n8n_site(server.url)
        _, [response] = chat(widget_client, "n8n-site", "Ana, ana@example.com")

    assert response.json()["session"] == {
        "completion_status": "complete",
        "lead": {"name": "Ana", "email": "ana@example.com"},
    }


def test_n8n_invalid_email_in_lead_is_refused_with_reason(widget_client):
    answer = {"output": "Noted!", "lead": {"email": "ana@example"}}
    with LoopbackServer(lambda r: Reply(200, answer)) as server:
        n8n_site(server.url)
        session_id, [response] = chat(widget_client, "n8n-site", "ana@example")

    texts = [m["text"] for m in response.json()["messages"]]
    assert texts[1] == "Noted!"
    assert "doesn't look right" in texts[2] and "period" in texts[2]
    assert response.json()["messages"][2]["expects"] == "email"
    assert ChatSession.objects.get(public_id=session_id).lead_email == ""


def test_n8n_secret_can_come_from_the_environment(widget_client, monkeypatch):
    monkeypatch.setenv("LEADCHAT_AGENT_N8N_TEST", "from-env")
    with LoopbackServer(lambda r: Reply(200, {"output": "ok"})) as server:
        site = n8n_site(server.url)
        site.agent_secret = "env:LEADCHAT_AGENT_N8N_TEST"
        site.save()
        chat(widget_client, "n8n-site", "hi")

    assert server.requests[0].headers["x-n8n-auth"] == "from-env"


# --- OpenAI-compatible -----------------------------------------------------------------------


def completion(message, prompt=10, completion_tokens=5):
    return {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def tool_call(arguments):
    return completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "save_lead", "arguments": json.dumps(arguments)},
                }
            ],
        },
        prompt=50,
        completion_tokens=20,
    )


def test_openai_reply_with_tool_call_captures_the_lead(widget_client):
    answers = [
        tool_call({"name": "Ana Silva", "email": "Ana@Example.com"}),
        completion({"role": "assistant", "content": "Thanks Ana, we'll be in touch!"}),
    ]
    with LoopbackServer(lambda r: Reply(200, answers.pop(0))) as server:
        openai_site(server.url)
        session_id, [response] = chat(
            widget_client, "openai-site", "I'm Ana Silva, Ana@Example.com"
        )

    data = response.json()
    assert data["messages"][1]["text"] == "Thanks Ana, we'll be in touch!"
    assert data["session"] == {
        "completion_status": "complete",
        "lead": {"name": "Ana Silva", "email": "Ana@example.com"},
    }
    first, second = (r.json() for r in server.requests)
    assert server.requests[0].path == "/v1/chat/completions"
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-123"
    assert first["model"] == "test-model"
    assert first["messages"][0] == {"role": "system", "content": "Be Acme."}
    assert first["messages"][-1] == {"role": "user", "content": "I'm Ana Silva, Ana@Example.com"}
    assert first["tools"][0]["function"]["name"] == "save_lead"
    tool_answer = second["messages"][-1]
    assert tool_answer["role"] == "tool" and tool_answer["tool_call_id"] == "call_1"
    assert json.loads(tool_answer["content"])["ok"] is True
    ai = ChatMessage.objects.get(
        session__public_id=session_id, role="ai", metadata__model="test-model"
    )
    assert ai.metadata["backend"] == "openai"
    assert ai.metadata["tokens"] == {"prompt": 60, "completion": 25, "total": 85}
    assert ai.metadata["latency_ms"] >= 0


def test_openai_tool_call_with_invalid_email_is_sent_back_to_the_model(widget_client):
    answers = [
        tool_call({"email": "ana@example"}),
        completion({"role": "assistant", "content": "That email seems incomplete, can you check?"}),
    ]
    with LoopbackServer(lambda r: Reply(200, answers.pop(0))) as server:
        openai_site(server.url)
        _, [response] = chat(widget_client, "openai-site", "ana@example")

    tool_answer = json.loads(server.requests[1].json()["messages"][-1]["content"])
    assert tool_answer["ok"] is False
    assert "period" in tool_answer["invalid"]["email"]
    assert response.json()["session"]["lead"]["email"] == ""
    assert response.json()["messages"][1]["text"].startswith("That email seems incomplete")


def test_openai_without_api_key_sends_no_authorization(widget_client):
    with LoopbackServer(
        lambda r: Reply(200, completion({"role": "assistant", "content": "Hi!"}))
    ) as server:
        openai_site(server.url, secret="")
        chat(widget_client, "openai-site", "hello")

    assert "authorization" not in server.requests[0].headers


def test_agent_urls_with_an_upper_case_scheme_are_used(widget_client):
    # A case-sensitive prefix check refused "HTTP://" as "no webhook_url / base_url", though the
    # scheme is case-insensitive and the outbound POST accepts it.
    with LoopbackServer(lambda r: Reply(200, {"output": "Hello from n8n!"})) as n8n:
        n8n_site(n8n.url.replace("http://", "HTTP://"))
        _, [n8n_response] = chat(widget_client, "n8n-site", "hello")
    with LoopbackServer(
        lambda r: Reply(200, completion({"role": "assistant", "content": "Hi from OpenAI!"}))
    ) as openai:
        openai_site(openai.url.replace("http://", "HTTP://"))
        _, [openai_response] = chat(widget_client, "openai-site", "hello")

    assert n8n_response.json()["messages"][1]["text"] == "Hello from n8n!"
    assert openai_response.json()["messages"][1]["text"] == "Hi from OpenAI!"
    assert len(n8n.requests) == len(openai.requests) == 1
    assert not AutomationError.objects.exists()


def test_openai_second_request_failing_keeps_the_lead_from_the_tool_call(widget_client):
    answers = [tool_call({"name": "Ana", "email": "ana@example.com"}), None]

    def respond(request):
        answer = answers.pop(0)
        return Reply(200, answer) if answer else Reply(503, "overloaded")

    with LoopbackServer(respond) as server:
        openai_site(server.url)
        _, [response] = chat(widget_client, "openai-site", "Ana, ana@example.com")

    assert response.json()["messages"][1]["text"].startswith(FALLBACK_REPLY)
    assert response.json()["session"]["completion_status"] == "complete"
    assert AutomationError.objects.get().details["status_code"] == 503


# --- failures: fallback within budget, error recorded, nothing lost --------------------------


def assert_fell_back(widget_client, session_id, response, elapsed, *, message_part):
    assert response.status_code == 201
    visitor, ai = response.json()["messages"]
    assert visitor["text"] == "Where is my order?"
    assert ai["text"].startswith(FALLBACK_REPLY)
    assert elapsed < BUDGET + 1.5, f"fallback took {elapsed:.2f}s"
    session = ChatSession.objects.get(public_id=session_id)
    assert session.messages.filter(role="visitor", text="Where is my order?").exists()
    error = AutomationError.objects.get()
    assert error.source == AutomationError.Source.AGENT
    assert error.session == session
    assert message_part in error.message
    stored_ai = session.messages.get(pk=ai["id"])
    assert stored_ai.metadata["fallback"] is True
    return error


def timed_chat(widget_client, site_key):
    session_id, token = widget_client.started(site_key=site_key)
    started = time.monotonic()
    response = widget_client.say(session_id, token, "Where is my order?")
    return session_id, response, time.monotonic() - started


@pytest.mark.parametrize("make_site", [n8n_site, openai_site], ids=["n8n", "openai"])
def test_hanging_backend_falls_back_within_budget(widget_client, make_site):
    with LoopbackServer(lambda r: Reply(200, {"output": "too late"}, delay=30)) as server:
        site = make_site(server.url)
        session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    error = assert_fell_back(
        widget_client, session_id, response, elapsed, message_part="time budget"
    )
    assert elapsed >= BUDGET * 0.9
    assert error.details["permanent"] is False


@pytest.mark.parametrize("make_site", [n8n_site, openai_site], ids=["n8n", "openai"])
def test_backend_500_falls_back(widget_client, make_site):
    with LoopbackServer(lambda r: Reply(500, "Internal error")) as server:
        site = make_site(server.url)
        session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    error = assert_fell_back(widget_client, session_id, response, elapsed, message_part="HTTP 500")
    assert error.details["permanent"] is False
    assert error.details["status_code"] == 500
    assert error.details["backend"] == site.agent_backend


@pytest.mark.parametrize("make_site", [n8n_site, openai_site], ids=["n8n", "openai"])
def test_malformed_json_falls_back(widget_client, make_site):
    bad = Reply(200, '{"output": "unterminated', headers={"Content-Type": "application/json"})
    with LoopbackServer(lambda r: bad) as server:
        site = make_site(server.url)
        session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    error = assert_fell_back(
        widget_client, session_id, response, elapsed, message_part="malformed JSON"
    )
    assert error.details["permanent"] is True


def test_backend_401_is_a_permanent_failure(widget_client):
    with LoopbackServer(lambda r: Reply(401, {"error": "bad key"})) as server:
        site = openai_site(server.url)
        session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    error = assert_fell_back(widget_client, session_id, response, elapsed, message_part="HTTP 401")
    assert error.details["permanent"] is True


def test_n8n_answer_without_output_falls_back(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"text": "wrong field"})) as server:
        site = n8n_site(server.url)
        session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    assert_fell_back(widget_client, session_id, response, elapsed, message_part="output")


def test_refused_connection_is_retried_once_then_falls_back(widget_client):
    site = n8n_site(f"http://127.0.0.1:{free_port()}")
    session_id, response, elapsed = timed_chat(widget_client, site.public_key)

    error = assert_fell_back(
        widget_client, session_id, response, elapsed, message_part="could not be reached"
    )
    assert error.details["permanent"] is False


def test_fallback_still_captures_an_email_the_visitor_offered(widget_client):
    with LoopbackServer(lambda r: Reply(502, "bad gateway")) as server:
        n8n_site(server.url)
        session_id, [response] = chat(widget_client, "n8n-site", "I'm Ana, ana@example.com")

    session = ChatSession.objects.get(public_id=session_id)
    assert (session.lead_name, session.lead_email) == ("Ana", "ana@example.com")
    assert session.completion_status == CompletionStatus.COMPLETE
    # The fallback no longer asks for an email it already has.
    assert "leave your name and email" not in response.json()["messages"][1]["text"]


def test_backend_recovers_after_an_outage(widget_client):
    replies = [Reply(500, "down"), Reply(200, {"output": "Back online!"})]
    with LoopbackServer(lambda r: replies.pop(0)) as server:
        n8n_site(server.url)
        session_id, responses = chat(widget_client, "n8n-site", "first", "second")

    assert [r.json()["messages"][1]["text"] for r in responses][1] == "Back online!"
    texts = list(
        ChatMessage.objects.filter(session__public_id=session_id, role="visitor").values_list(
            "text", flat=True
        )
    )
    assert texts == ["first", "second"]
    # n8n received the second message with the same session id.
    assert server.requests[1].json()["sessionId"] == session_id
