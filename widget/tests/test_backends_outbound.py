"""Agent backends under faults and attacks (issue 11, points 5, 17 and 19), through the real
widget API against real loopback backends.

Each failure still keeps the widget's promises: the visitor's message is stored, the visitor gets
the polite fallback within the budget, and an AutomationError(source=agent) says what happened.
"""

import json
import time

import pytest

from leadchat.testing import LoopbackServer, Reply
from leadchat.testing_outbound import DripServer
from sessions_app.error_details import HIDDEN
from sessions_app.models import AutomationError, ChatMessage
from widget.backends.base import MAX_REPLY_CHARS
from widget.backends.http import ERROR_BODY_BYTES
from widget.models import Site
from widget.services import FALLBACK_REPLY
from widget.tests.factories import SiteFactory
from widget.tests.test_admin import form_data

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"
BUDGET = 2.0
SLACK = 1.0


@pytest.fixture(autouse=True)
def _budget(settings):
    settings.WIDGET_AGENT_TIMEOUT = BUDGET
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 1.0


def n8n_site(url, secret="n8n-header-secret", **config):
    return SiteFactory(
        public_key="n8n-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="n8n",
        agent_config={"webhook_url": f"{url}/webhook/chat", "auth_header": "X-N8N-Auth", **config},
        agent_secret=secret,
    )


def openai_site(url, secret="sk-test-123"):
    return SiteFactory(
        public_key="openai-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="openai",
        agent_config={"base_url": f"{url}/v1", "model": "test-model"},
        agent_secret=secret,
    )


def say(widget_client, site, text="Where is my order?"):
    session_id, token = widget_client.started(site_key=site.public_key)
    started = time.monotonic()
    response = widget_client.say(session_id, token, text)
    return session_id, response, time.monotonic() - started


def assert_fallback(response, session_id, text="Where is my order?"):
    assert response.status_code == 201, response.content
    visitor, ai = response.json()["messages"][:2]
    assert visitor["text"] == text
    assert ai["text"].startswith(FALLBACK_REPLY)
    assert ChatMessage.objects.filter(
        session__public_id=session_id, role="visitor", text=text
    ).exists()
    error = AutomationError.objects.get()
    assert error.source == AutomationError.Source.AGENT
    assert str(error.session.public_id) == session_id
    return error


# --- Point 5: the budget is wall-clock ---------------------------------------------------------


@pytest.mark.parametrize("make_site", [n8n_site, openai_site], ids=["n8n", "openai"])
@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_backend_dripping_its_answer_falls_back_within_the_budget(widget_client, make_site, drip):
    # A byte every 0.5 s: before the fix this held the visitor 45 s against a 20 s budget.
    with DripServer(interval=0.5, drip=drip) as backend:
        site = make_site(backend.url)
        session_id, response, elapsed = say(widget_client, site)

    assert elapsed < BUDGET + SLACK, f"the visitor waited {elapsed:.2f}s"
    error = assert_fallback(response, session_id)
    assert "time budget" in error.message
    assert error.details["permanent"] is False


# --- Point 17: where a backend may be --------------------------------------------------------


@pytest.mark.parametrize("make_site", [n8n_site, openai_site], ids=["n8n", "openai"])
def test_a_loopback_backend_is_refused_unless_private_networks_are_allowed(
    widget_client, settings, make_site
):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    with LoopbackServer(lambda r: Reply(200, {"output": "hi"})) as backend:
        site = make_site(f"http://localhost:{backend.port}")
        session_id, response, _ = say(widget_client, site)
        assert backend.requests == []

    error = assert_fallback(response, session_id)
    assert "not allowed" in error.message and "127.0.0.1" in error.message
    assert error.details["permanent"] is True


def test_a_metadata_backend_is_refused_even_with_private_networks_allowed(widget_client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    site = n8n_site("http://169.254.169.254")
    session_id, response, elapsed = say(widget_client, site)

    error = assert_fallback(response, session_id)
    assert "metadata" in error.message and error.details["permanent"] is True
    assert elapsed < 1.0  # refused before any connect


@pytest.mark.parametrize(
    ("backend", "config", "fragment"),
    [
        ("n8n", {"webhook_url": "http://169.254.169.254/webhook/chat"}, "cloud metadata"),
        ("n8n", {"webhook_url": "http://[fe80::1]:5678/webhook/chat"}, "link-local"),
        ("openai", {"base_url": "http://[fd00:ec2::254]/v1", "model": "m"}, "cloud metadata"),
        ("openai", {"base_url": "http://100.100.100.200/v1", "model": "m"}, "cloud metadata"),
    ],
)
def test_admin_refuses_an_agent_url_at_a_metadata_or_link_local_address(
    client, admin_role_user, settings, backend, config, fragment
):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    client.force_login(admin_role_user)

    response = client.post(
        "/admin/widget/site/add/",
        form_data(agent_backend=backend, agent_config=json.dumps(config)),
    )

    assert response.status_code == 200
    assert fragment in str(response.context["adminform"].form.errors["agent_config"])
    assert not Site.objects.exists()


def test_admin_refuses_a_local_agent_url_unless_private_networks_are_allowed(
    client, admin_role_user, settings
):
    config = json.dumps({"base_url": "http://localhost:11434/v1", "model": "llama3"})
    client.force_login(admin_role_user)

    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    refused = client.post(
        "/admin/widget/site/add/", form_data(agent_backend="openai", agent_config=config)
    )
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    saved = client.post(
        "/admin/widget/site/add/", form_data(agent_backend="openai", agent_config=config)
    )

    assert "OUTBOUND_ALLOW_PRIVATE_NETWORKS" in str(refused.context["adminform"].form.errors)
    assert saved.status_code == 302
    assert Site.objects.get().agent_config["base_url"] == "http://localhost:11434/v1"


@pytest.mark.parametrize(
    ("backend", "config"),
    [
        ("n8n", {"webhook_url": "HTTP://localhost:5678/webhook/chat"}),
        ("openai", {"base_url": "HTTPS://localhost:11434/v1", "model": "llama3"}),
    ],
)
def test_site_settings_accept_an_agent_url_with_an_upper_case_scheme(settings, backend, config):
    # A case-sensitive prefix check refused these, though the outbound POST sends them.
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    SiteFactory.build(agent_backend=backend, agent_config=config).clean()  # raises if refused


# --- Point 17: env: secrets only from the agent prefix -----------------------------------------


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "AUTOMATION_API_KEY", "bad-name"])
def test_admin_refuses_an_env_secret_outside_the_agent_prefix(client, admin_role_user, name):
    client.force_login(admin_role_user)

    response = client.post(
        "/admin/widget/site/add/",
        form_data(
            agent_backend="openai",
            agent_config='{"model": "gpt-4o-mini"}',
            new_secret=f"env:{name}",
        ),
    )

    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors["new_secret"])
    assert "LEADCHAT_AGENT_" in errors or "not an environment variable name" in errors
    assert not Site.objects.exists()


@pytest.mark.parametrize("name", ["LEADCHAT_AGENT_OPENAI_KEY", "OPENAI_API_KEY"])
def test_admin_accepts_an_env_secret_with_the_agent_prefix(client, admin_role_user, name):
    client.force_login(admin_role_user)

    response = client.post(
        "/admin/widget/site/add/",
        form_data(
            agent_backend="openai",
            agent_config='{"model": "gpt-4o-mini"}',
            new_secret=f"env:{name}",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Site.objects.get().agent_secret == f"env:{name}"


def test_a_stored_env_secret_outside_the_prefix_is_never_read_or_sent(
    widget_client, monkeypatch, settings
):
    # Stored before the rule (or by a script): SECRET_KEY must not go out as the auth header.
    monkeypatch.setenv("SECRET_KEY", "the-servers-own-signing-key")
    with LoopbackServer(lambda r: Reply(200, {"output": "hi"})) as backend:
        site = n8n_site(backend.url, secret="env:SECRET_KEY")
        session_id, response, _ = say(widget_client, site)
        assert backend.requests == []

    error = assert_fallback(response, session_id)
    assert "env:SECRET_KEY is not allowed" in error.message
    assert error.details["permanent"] is True
    assert "the-servers-own-signing-key" not in json.dumps(error.details)


def test_an_unset_env_secret_is_a_permanent_error_not_an_empty_header(widget_client, monkeypatch):
    monkeypatch.delenv("LEADCHAT_AGENT_MISSING", raising=False)
    with LoopbackServer(lambda r: Reply(200, {"output": "hi"})) as backend:
        site = n8n_site(backend.url, secret="env:LEADCHAT_AGENT_MISSING")
        session_id, response, _ = say(widget_client, site)
        assert backend.requests == []

    error = assert_fallback(response, session_id)
    assert "LEADCHAT_AGENT_MISSING is not set" in error.message


# --- Point 17: backend answers in error details are capped, for admins only -------------------


def failing_backend_error(widget_client):
    answer = "<html>" + "internal stack trace and prompt " * 400 + "</html>"  # ~12 KB
    with LoopbackServer(lambda r: Reply(500, answer)) as backend:
        site = n8n_site(backend.url)
        session_id, response, _ = say(widget_client, site)
    return assert_fallback(response, session_id)


def test_a_backend_answer_kept_in_an_error_is_capped(widget_client):
    error = failing_backend_error(widget_client)

    assert error.details["response_body"].startswith("<html>internal stack trace")
    assert len(error.details["response_body"].encode()) <= ERROR_BODY_BYTES
    assert error.details["response_body_truncated"] is True


def test_only_admins_see_the_backend_answer_in_the_staff_api(
    widget_client, client, admin_role_user, agent_user, qa_user
):
    error = failing_backend_error(widget_client)
    seen, in_session = {}, {}
    for user in (admin_role_user, agent_user, qa_user):
        client.force_login(user)
        [row] = client.get("/api/automation-errors/").json()["results"]
        seen[user.role] = row["details"]["response_body"]
        session = client.get(f"/api/sessions/{error.session.public_id}/").json()
        in_session[user.role] = session["automation_errors"][0]["details"]["response_body"]

    assert seen["admin"].startswith("<html>internal stack trace")
    assert seen["agent"] == HIDDEN
    assert seen["qa"] == HIDDEN
    assert in_session == seen


def test_only_admins_see_the_backend_answer_in_the_qa_console(
    widget_client, client, admin_role_user, qa_user
):
    error = failing_backend_error(widget_client)
    url = f"/admin/sessions_app/automationerror/{error.pk}/change/"

    client.force_login(qa_user)
    as_qa = client.get(url).content.decode()
    client.force_login(admin_role_user)
    as_admin = client.get(url).content.decode()

    assert "internal stack trace" not in as_qa and "shown to admins only" in as_qa
    assert "internal stack trace" in as_admin


def test_a_backend_redirect_is_not_followed_and_is_a_permanent_error(widget_client):
    with LoopbackServer(
        lambda r: Reply(302, "", {"Location": "http://169.254.169.254/latest/meta-data/"})
    ) as backend:
        site = n8n_site(backend.url)
        session_id, response, _ = say(widget_client, site)
        assert len(backend.requests) == 1

    error = assert_fallback(response, session_id)
    assert "redirect" in error.message and error.details["permanent"] is True


# --- Point 19: reply length and malformed shapes ------------------------------------------------


def test_a_long_n8n_reply_is_cut_to_the_widget_limit_and_marked(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "word " * 3000})) as backend:
        site = n8n_site(backend.url)
        session_id, response, _ = say(widget_client, site)

    ai = response.json()["messages"][1]
    assert len(ai["text"]) == MAX_REPLY_CHARS and ai["text"].endswith("…")
    stored = ChatMessage.objects.get(session__public_id=session_id, role="ai", text=ai["text"])
    assert stored.metadata["truncated"] is True
    assert not AutomationError.objects.exists()


@pytest.mark.parametrize(
    "tool_calls",
    ["save_lead", {"id": "call_1"}, [1, 2], ["call_1"], 7],
    ids=["string", "object", "numbers", "strings", "number"],
)
def test_a_malformed_tool_calls_is_a_permanent_backend_error_not_a_500(widget_client, tool_calls):
    answer = {
        "choices": [{"message": {"role": "assistant", "content": "", "tool_calls": tool_calls}}]
    }
    with LoopbackServer(lambda r: Reply(200, answer)) as backend:
        site = openai_site(backend.url)
        session_id, response, _ = say(widget_client, site)

    error = assert_fallback(response, session_id)
    assert "tool_calls" in error.message
    assert error.details["permanent"] is True
    assert "AttributeError" not in error.message
