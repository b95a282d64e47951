"""The agent bulkhead: a hanging agent holds at most WIDGET_AGENT_MAX_CONCURRENT threads.

Real parts: the app served by live_server (a threaded WSGI server), a loopback n8n that hangs,
concurrent visitors on real sockets.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from leadchat import metrics
from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import AutomationError, ChatMessage, MessageRole
from widget.services import FALLBACK_REPLY
from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"


def start(base: str) -> dict:
    response = requests.post(
        f"{base}/api/widget/sessions/",
        json={"site_key": "hung", "page_url": f"{ORIGIN}/"},
        headers={"Origin": ORIGIN},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def say(base: str, session: dict, text: str) -> requests.Response:
    return requests.post(
        f"{base}/api/widget/sessions/{session['session_id']}/messages/",
        json={"text": text},
        headers={"Origin": ORIGIN, "X-Visitor-Token": session["visitor_token"]},
        timeout=30,
    )


def rejected_count() -> float:
    return next(
        s.value
        for family in metrics.AGENT_BULKHEAD_REJECTED.collect()
        for s in family.samples
        if s.name.endswith("_total")
    )


@pytest.mark.django_db(transaction=True)
def test_visitors_beyond_the_limit_get_the_fallback_at_once_while_the_agent_hangs(
    live_server, settings, caplog
):
    settings.WIDGET_AGENT_MAX_CONCURRENT = 2
    settings.WIDGET_AGENT_TIMEOUT = 15
    base = live_server.url
    with LoopbackServer(lambda r: Reply(200, {"output": "late"}, delay=30)) as agent:
        SiteFactory(
            public_key="hung",
            allowed_origins=[ORIGIN],
            agent_backend="n8n",
            agent_config={"webhook_url": f"{agent.url}/webhook/chat"},
        )
        sessions = [start(base) for _ in range(4)]
        results: dict[int, requests.Response] = {}

        def visitor(i: int) -> None:
            results[i] = say(base, sessions[i], f"hello {i}")

        hanging = [threading.Thread(target=visitor, args=(i,)) for i in (0, 1)]
        for thread in hanging:
            thread.start()
        deadline = time.monotonic() + 10
        while len(agent.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(agent.requests) == 2, "both slots are held by the hanging agent"

        before = rejected_count()
        timings = []
        for i in (2, 3):
            began = time.monotonic()
            results[i] = say(base, sessions[i], "I'm Ana, ana@example.com" if i == 3 else "hi")
            timings.append(time.monotonic() - began)
        began = time.monotonic()
        health = requests.get(f"{base}/health", timeout=5)
        health_seconds = time.monotonic() - began

        assert all(seconds < 2 for seconds in timings), timings
        assert health.status_code == 200 and health_seconds < 1
        assert len(agent.requests) == 2  # the turned-away visitors never reached the agent
        for i in (2, 3):
            assert results[i].status_code == 201, results[i].text
            reply = results[i].json()["messages"][-1]
            assert reply["text"].startswith(FALLBACK_REPLY)
        assert rejected_count() == before + 2
    for thread in hanging:
        thread.join(30)

    # Stored: every visitor's message, and the lead offered in a turned-away one.
    texts = set(ChatMessage.objects.filter(role=MessageRole.VISITOR).values_list("text", flat=True))
    assert texts == {"hello 0", "hello 1", "hi", "I'm Ana, ana@example.com"}
    from sessions_app.models import ChatSession

    assert ChatSession.objects.get(public_id=sessions[3]["session_id"]).lead_email == (
        "ana@example.com"
    )
    # No automation error per turned-away message: only the counter and one log line.
    turned_away = [sessions[2]["session_id"], sessions[3]["session_id"]]
    assert not AutomationError.objects.filter(session__public_id__in=turned_away).exists()
    ai = ChatMessage.objects.filter(
        session__public_id=sessions[2]["session_id"], role=MessageRole.AI
    ).last()
    assert ai.metadata["bulkhead"] is True
