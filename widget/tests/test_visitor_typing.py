""" "Visitor is typing": the widget's ping (checked like every widget request) and what the
agent holding the session sees in the staff API's live poll."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from sessions_app import live
from sessions_app.models import ChatSession
from sessions_app.takeover import session_takeover
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"


@pytest.fixture
def visitor(client):
    SiteFactory(name="Acme", public_key="acme", allowed_origins=[ORIGIN])
    body = client.post(
        "/api/widget/sessions/",
        {"site_key": "acme"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    headers = {"HTTP_ORIGIN": ORIGIN, "HTTP_X_VISITOR_TOKEN": body["visitor_token"]}
    return ChatSession.objects.get(public_id=body["session_id"]), headers


@pytest.fixture
def ana(make_user):
    return make_user("agent", username="ana-agent", first_name="Ana")


def ping(client, session, headers):
    return client.post(f"/api/widget/sessions/{session.public_id}/typing/", **headers)


def agent_sees_typing(client, session, user) -> bool:
    client.force_login(user)
    url = reverse("staff-api:session-messages", args=[session.public_id])
    body = client.get(url, {"after": 10**9}).json()
    client.logout()
    return body["visitor_typing"]


def test_the_agent_holding_the_session_sees_the_visitor_typing_until_the_message_comes(
    client, visitor, ana
):
    session, headers = visitor
    session_takeover(session=session, by=ana)
    assert agent_sees_typing(client, session, ana) is False
    assert ping(client, session, headers).status_code == 204
    assert agent_sees_typing(client, session, ana) is True
    posted = client.post(
        f"/api/widget/sessions/{session.public_id}/messages/",
        {"text": "Here is my question"},
        content_type="application/json",
        **headers,
    )
    assert posted.status_code == 201
    assert agent_sees_typing(client, session, ana) is False


def test_the_typing_hint_expires_on_its_own(client, visitor, ana, monkeypatch):
    monkeypatch.setattr(live, "TYPING_SECONDS", 1)
    session, headers = visitor
    session_takeover(session=session, by=ana)
    ping(client, session, headers)
    assert agent_sees_typing(client, session, ana) is True
    time.sleep(1.2)
    assert agent_sees_typing(client, session, ana) is False


def test_typing_in_a_session_the_ai_runs_is_not_kept(client, visitor, ana):
    session, headers = visitor
    assert ping(client, session, headers).status_code == 204
    assert live.visitor_is_typing(session_pk=session.pk) is False


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"HTTP_X_VISITOR_TOKEN": "guess"}, 403),
        ({"HTTP_X_VISITOR_TOKEN": ""}, 403),
        ({"HTTP_ORIGIN": "https://evil.example.net"}, 403),
    ],
)
def test_a_typing_ping_is_checked_like_every_widget_request(client, visitor, ana, change, status):
    session, headers = visitor
    session_takeover(session=session, by=ana)
    assert ping(client, session, {**headers, **change}).status_code == status
    assert live.visitor_is_typing(session_pk=session.pk) is False
    unknown = client.post(
        "/api/widget/sessions/00000000-0000-0000-0000-000000000000/typing/", **headers
    )
    assert unknown.status_code == 404


def test_typing_pings_count_in_the_poll_budget(client, visitor, settings):
    settings.WIDGET_POLLS_PER_SESSION_PER_MINUTE = 2
    session, headers = visitor
    assert [ping(client, session, headers).status_code for _ in range(3)] == [204, 204, 429]
