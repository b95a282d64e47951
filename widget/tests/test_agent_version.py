"""Every AI message records the agent version that wrote it: backend, model, prompt/config hash.

Through the real widget API; n8n and the OpenAI-compatible backend are loopback servers.
"""

import re

import pytest

from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import ChatMessage, MessageRole
from widget.backends.version import agent_config_hash, agent_version
from widget.tests.factories import SiteFactory
from widget.tests.test_backends import chat, n8n_site, openai_site

pytestmark = pytest.mark.django_db

HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(autouse=True)
def _small_budget(settings):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5


def ai_messages(session_id):
    return list(
        ChatMessage.objects.filter(session__public_id=session_id, role=MessageRole.AI).order_by(
            "created_at", "id"
        )
    )


def test_scripted_greeting_and_replies_record_the_scripted_version(widget_client):
    site = SiteFactory(public_key="scripted-site", allowed_origins=["https://landing.example.com"])
    session_id, [response] = chat(widget_client, "scripted-site", "I'd like a quote")
    assert response.status_code == 201
    messages = ai_messages(session_id)
    assert len(messages) >= 2  # the greeting and the reply
    for message in messages:
        assert message.agent_backend == "scripted"
        assert message.agent_model == "scripted-v1"
        assert HEX16.match(message.agent_config_hash)
        assert message.agent_config_hash == agent_config_hash("scripted", site.agent_config)
    visitor = ChatMessage.objects.get(session__public_id=session_id, role=MessageRole.VISITOR)
    assert (visitor.agent_backend, visitor.agent_model, visitor.agent_config_hash) == ("", "", "")


def test_n8n_reply_records_n8n_its_model_and_a_hash_without_the_secret(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "Hello from n8n!"})) as server:
        site = n8n_site(server.url, model="gpt-4o-in-n8n")
        session_id, [response] = chat(widget_client, "n8n-site", "Do you ship to Spain?")
    assert response.status_code == 201
    reply = ChatMessage.objects.get(session__public_id=session_id, text="Hello from n8n!")
    assert reply.agent_backend == "n8n"
    assert reply.agent_model == "gpt-4o-in-n8n"
    assert reply.agent_config_hash == agent_config_hash("n8n", site.agent_config)
    assert "n8n-header-secret" not in reply.agent_config_hash


def test_openai_reply_records_the_model_it_answered_with(widget_client):
    answer = {
        "choices": [{"message": {"role": "assistant", "content": "Hi from the model"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    with LoopbackServer(lambda r: Reply(200, answer)) as server:
        site = openai_site(server.url)
        session_id, [response] = chat(widget_client, "openai-site", "Hello")
    assert response.status_code == 201
    reply = ChatMessage.objects.get(session__public_id=session_id, text="Hi from the model")
    assert (reply.agent_backend, reply.agent_model) == ("openai", "test-model")
    assert reply.agent_config_hash == agent_config_hash("openai", site.agent_config)


def test_a_fallback_reply_records_the_configured_version(widget_client):
    with LoopbackServer(lambda r: Reply(503, {"error": "down"})) as server:
        site = n8n_site(server.url)
        session_id, _ = chat(widget_client, "n8n-site", "Hello?")
    reply = ai_messages(session_id)[-1]
    assert reply.metadata.get("fallback") is True
    assert reply.agent_backend == "n8n"
    assert reply.agent_config_hash == agent_config_hash("n8n", site.agent_config)


def test_the_hash_changes_with_the_prompt_and_config_but_not_with_credentials():
    base = {"base_url": "http://llm/v1", "model": "m", "system_prompt": "Be kind."}
    first = agent_config_hash("openai", base)
    assert HEX16.match(first)
    assert agent_config_hash("openai", dict(base)) == first  # stable
    assert agent_config_hash("openai", {**base, "system_prompt": "Be brief."}) != first
    assert agent_config_hash("openai", {**base, "temperature": 0.9}) != first
    assert agent_config_hash("n8n", base) != first  # another backend is another agent
    # A credential someone put in the config is neither hashed nor a new version.
    assert agent_config_hash("openai", {**base, "api_key": "sk-live-1"}) == first
    assert agent_config_hash("openai", {**base, "basic_auth_password": "hunter2"}) == first
    # No system_prompt: the built-in default is what is sent, and it is hashed.
    assert agent_config_hash("openai", {"model": "m"}) != agent_config_hash("n8n", {"model": "m"})


def test_agent_version_names_the_model_from_the_reply_then_the_config():
    assert agent_version(backend="openai", config={"model": "a"}, model="b").model == "b"
    assert agent_version(backend="n8n", config={"model": "a"}).model == "a"
    assert agent_version(backend="scripted", config={}).model == "scripted-v1"
