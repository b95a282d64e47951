"""AI budgets per site (widget.budget) against real loopback backends, through the widget API.

Each budget (tokens and calls, per session and per day) is spent by real requests to a fake
n8n or OpenAI-compatible server; beyond it the server must receive nothing more, the visitor
gets the fallback reply and the scripted lead questions, and the admin one error per day.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, Sum

from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import AutomationError, ChatMessage, ChatSession, CompletionStatus
from widget.budget import budget_admit, budget_day, budget_spend
from widget.models import SiteDailyUsage
from widget.services import FALLBACK_REPLY, widget_message_post, widget_session_start
from widget.tests.factories import SiteFactory
from widget.tests.test_backends import chat, completion, n8n_site, openai_site, tool_call

pytestmark = pytest.mark.django_db

NO_LIMITS = {
    "ai_session_token_budget": None,
    "ai_daily_token_budget": None,
    "ai_session_message_budget": None,
    "ai_daily_message_budget": None,
}


@pytest.fixture(autouse=True)
def _budget_settings(settings):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5


def with_budget(site, **budgets):
    for field, value in {**NO_LIMITS, **budgets}.items():
        setattr(site, field, value)
    site.save()
    return site


def answer_60_tokens(request):
    return Reply(200, completion({"role": "assistant", "content": "An AI answer."}, 40, 20))


def say_all(widget_client, session_id, token, *texts):
    responses = [widget_client.say(session_id, token, text) for text in texts]
    assert all(r.status_code == 201 for r in responses), [r.content for r in responses]
    return [r.json()["messages"][-1] for r in responses]


def budget_errors():
    return AutomationError.objects.filter(workflow__endswith="agent budget")


# --- Tokens per session (OpenAI-compatible) ---------------------------------------------------


def test_session_token_budget_stops_the_backend_and_the_script_still_captures_the_lead(
    widget_client,
):
    with LoopbackServer(answer_60_tokens) as server:
        with_budget(openai_site(server.url), ai_session_token_budget=100)
        session_id, token = widget_client.started(site_key="openai-site")
        replies = say_all(
            widget_client,
            session_id,
            token,
            "What do you sell?",  # 60 tokens
            "And the price?",  # 120: the budget is spent by this reply
            "Is there a discount?",  # refused: the backend is not called
            "Ana Silva",
            "ana@example.com",
        )

    assert len(server.requests) == 2
    assert [r["text"] for r in replies[:2]] == ["An AI answer.", "An AI answer."]
    assert replies[2]["text"] == f"{FALLBACK_REPLY} Happy to help with that! May I have your name?"
    # The apology once; then the scripted questions alone.
    assert replies[3]["text"] == "Thanks, Ana! What's the best email to reach you?"
    assert replies[3]["expects"] == "email"
    assert replies[4]["text"].startswith("Perfect, thank you Ana!")
    session = ChatSession.objects.get(public_id=session_id)
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email) == ("Ana Silva", "ana@example.com")
    assert (session.ai_calls, session.ai_tokens) == (2, 120)
    budget_reply = ChatMessage.objects.get(session=session, text=replies[2]["text"])
    assert budget_reply.metadata["backend"] == "scripted"
    assert budget_reply.metadata["budget"] == "session_tokens"
    assert budget_reply.metadata["fallback"] is True
    assert budget_reply.metadata["latency_ms"] is None  # not an AI reply time in the stats
    [error] = budget_errors()
    assert error.source == AutomationError.Source.AGENT
    assert error.details["budget"] == "session_tokens"
    assert (error.details["limit"], error.details["used"]) == (100, 120)
    assert error.session_id == session.pk


def test_tokens_of_a_completion_before_a_failure_are_counted(widget_client):
    answers = [
        Reply(200, tool_call({"name": "Ana"})),  # 70 tokens
        Reply(500, {"error": "overloaded"}),
    ]
    with LoopbackServer(lambda r: answers.pop(0)) as server:
        with_budget(openai_site(server.url), ai_session_token_budget=50)
        session_id, token = widget_client.started(site_key="openai-site")
        first, second = say_all(widget_client, session_id, token, "I'm Ana", "Hello?")

    assert first["text"].startswith(FALLBACK_REPLY)  # the outage fallback
    assert "May I have your name" not in first["text"]
    assert len(server.requests) == 2
    assert ChatSession.objects.get(public_id=session_id).ai_tokens == 70
    assert ChatMessage.objects.get(session__public_id=session_id, text=second["text"]).metadata[
        "budget"
    ] == ("session_tokens")


# --- Tokens per day (OpenAI-compatible) -------------------------------------------------------


def test_daily_token_budget_is_shared_by_every_session_of_the_site(widget_client):
    with LoopbackServer(answer_60_tokens) as server:
        site = with_budget(openai_site(server.url), ai_daily_token_budget=100)
        other = with_budget(
            SiteFactory(public_key="other-site", allowed_origins=site.allowed_origins)
        )
        chat(widget_client, "openai-site", "one", "two")
        _, [second] = chat(widget_client, "openai-site", "three")
        # Another site's budget is its own (a scripted site is never metered).
        _, [elsewhere] = chat(widget_client, "other-site", "hello")

    assert len(server.requests) == 2
    assert second.json()["messages"][-1]["text"].startswith(FALLBACK_REPLY)
    usage = SiteDailyUsage.objects.get(site=site, day=budget_day())
    assert (usage.ai_calls, usage.ai_tokens, usage.budget_replies) == (2, 120, 1)
    assert not SiteDailyUsage.objects.filter(site=other).exists()
    assert elsewhere.status_code == 201
    [error] = budget_errors()
    assert error.details["budget"] == "daily_tokens"


# --- Messages per session and per day (n8n) ---------------------------------------------------


def test_session_message_budget_for_n8n(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "From n8n."})) as server:
        with_budget(n8n_site(server.url), ai_session_message_budget=2)
        session_id, token = widget_client.started(site_key="n8n-site")
        replies = say_all(widget_client, session_id, token, "a", "b", "c", "I'm Ana")
        _, [fresh] = chat(widget_client, "n8n-site", "a new visitor")

    # Two calls for the first session, one for the second: its own budget.
    assert len(server.requests) == 3
    assert [r["text"] for r in replies[:2]] == ["From n8n.", "From n8n."]
    assert replies[2]["text"].startswith(FALLBACK_REPLY)
    assert replies[3]["text"] == "Thanks, Ana! What's the best email to reach you?"
    assert fresh.json()["messages"][-1]["text"] == "From n8n."
    assert ChatSession.objects.get(public_id=session_id).ai_calls == 2
    [error] = budget_errors()
    assert error.details["budget"] == "session_calls"


def test_daily_message_budget_for_n8n(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "From n8n."})) as server:
        site = with_budget(n8n_site(server.url), ai_daily_message_budget=3)
        _, first = chat(widget_client, "n8n-site", "a", "b")
        _, second = chat(widget_client, "n8n-site", "c", "my email is bo@example.com")

    assert len(server.requests) == 3
    assert [r.json()["messages"][-1]["text"] for r in first + second[:1]] == ["From n8n."] * 3
    refused = second[1].json()
    # The scripted flow takes the email the visitor offered and asks for the name.
    assert refused["messages"][-1]["text"] == (
        f"{FALLBACK_REPLY} Thanks, I've got your email. And may I have your name?"
    )
    assert refused["session"]["lead"]["email"] == "bo@example.com"
    assert SiteDailyUsage.objects.get(site=site).ai_calls == 3


def test_zero_budget_never_calls_the_backend(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "From n8n."})) as server:
        with_budget(n8n_site(server.url), ai_daily_message_budget=0)
        _, [response] = chat(widget_client, "n8n-site", "hello")

    assert server.requests == []
    assert response.json()["messages"][-1]["text"].startswith(FALLBACK_REPLY)


# --- One automation error per site and day ----------------------------------------------------


def test_spent_budget_is_one_automation_error_per_site_per_day(widget_client):
    with LoopbackServer(lambda r: Reply(200, {"output": "From n8n."})) as server:
        site = with_budget(n8n_site(server.url), ai_daily_message_budget=1)
        for _ in range(3):
            chat(widget_client, "n8n-site", "one", "two")
        assert len(server.requests) == 1
        assert budget_errors().count() == 1
        usage = SiteDailyUsage.objects.get(site=site)
        assert usage.budget_replies == 5 and usage.budget_alerted_at is not None

        # The next day (today's row becomes yesterday's): a fresh budget, and a new error once
        # that one is spent.
        SiteDailyUsage.objects.filter(pk=usage.pk).update(day=F("day") - timedelta(days=1))
        chat(widget_client, "n8n-site", "one", "two", "three")

    assert len(server.requests) == 2
    assert budget_errors().count() == 2
    assert SiteDailyUsage.objects.filter(site=site).count() == 2


# --- Concurrency: counted in the database, exact under parallel requests ----------------------


def run_in_threads(count, work):
    """Run `work(i)` in `count` threads released together; return their results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def target(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_daily_call_budget_admits_exactly_the_limit_on_postgresql():
    site = with_budget(SiteFactory(agent_backend="n8n"), ai_daily_message_budget=5)
    sessions = [widget_session_start(site=site)[0] for _ in range(16)]

    refusals = run_in_threads(16, lambda i: budget_admit(session=sessions[i], site=site))

    assert refusals.count(None) == 5
    assert {r.kind for r in refusals if r is not None} == {"daily_calls"}
    assert SiteDailyUsage.objects.get(site=site).ai_calls == 5
    # A refused call left no count on its session (the two increments commit together).
    assert ChatSession.objects.aggregate(n=Sum("ai_calls"))["n"] == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_token_counts_lose_no_update_on_postgresql():
    site = with_budget(SiteFactory(agent_backend="openai"))
    session, _, _ = widget_session_start(site=site)

    run_in_threads(12, lambda i: budget_spend(session=session, site=site, tokens=7))

    assert ChatSession.objects.get(pk=session.pk).ai_tokens == 84
    assert SiteDailyUsage.objects.get(site=site).ai_tokens == 84


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_visitors_spend_the_budget_once_and_alert_once_on_postgresql(settings):
    # Every one of the 12 must reach the budget check: the bulkhead (8 by default) would
    # answer some of them first, and that is another test's subject.
    settings.WIDGET_AGENT_MAX_CONCURRENT = 50
    with LoopbackServer(lambda r: Reply(200, {"output": "From n8n."})) as server:
        site = with_budget(n8n_site(server.url), ai_daily_message_budget=4)
        sessions = [widget_session_start(site=site)[0] for _ in range(12)]

        turns = run_in_threads(
            12, lambda i: widget_message_post(session=sessions[i], text="Do you ship to Spain?")
        )

    texts = [turn.messages[-1].text for turn in turns]
    assert len(server.requests) == 4
    assert texts.count("From n8n.") == 4
    assert sum(text.startswith(FALLBACK_REPLY) for text in texts) == 8
    assert budget_errors().count() == 1
    usage = SiteDailyUsage.objects.get(site=site)
    assert (usage.ai_calls, usage.budget_replies) == (4, 8)
