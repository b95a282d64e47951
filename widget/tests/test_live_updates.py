"""The widget's poll for new messages (GET /api/widget/sessions/{id}/messages/?after=N): checked
like every widget request (site, origin, visitor token, rate limits) and cheap when idle."""

from __future__ import annotations

import pytest

from sessions_app.models import MessageRole
from sessions_app.services import message_add
from sessions_app.takeover import agent_reply, session_takeover
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"


@pytest.fixture
def started(client):
    SiteFactory(name="Acme", public_key="acme", allowed_origins=[ORIGIN])
    body = client.post(
        "/api/widget/sessions/",
        {"site_key": "acme"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    from sessions_app.models import ChatSession

    session = ChatSession.objects.get(public_id=body["session_id"])
    return session, {"HTTP_ORIGIN": ORIGIN, "HTTP_X_VISITOR_TOKEN": body["visitor_token"]}


def poll(client, session, headers, after=0):
    return client.get(
        f"/api/widget/sessions/{session.public_id}/messages/", {"after": after}, **headers
    )


def test_an_idle_poll_answers_nothing_new_and_its_cursor(client, started):
    session, headers = started
    first = poll(client, session, headers).json()
    assert [m["role"] for m in first["messages"]] == ["ai"]  # the greeting
    again = poll(client, session, headers, after=first["cursor"]).json()
    assert again == {"messages": [], "cursor": first["cursor"], "held": False, "poll_ms": 2000}


def test_agent_messages_and_the_join_line_come_with_the_agents_name(client, started, make_user):
    session, headers = started
    cursor = poll(client, session, headers).json()["cursor"]
    ana = make_user("agent", username="ana", first_name="Ana")
    session_takeover(session=session, by=ana)
    agent_reply(session=session, by=ana, text="<b>Hi</b> & welcome")
    # An internal system note is never shown to the visitor.
    message_add(session=session, role=MessageRole.SYSTEM, text="internal note")
    body = poll(client, session, headers, after=cursor).json()
    assert [(m["role"], m["text"], m["author"]) for m in body["messages"]] == [
        ("system", "Ana from Acme joined the chat", "Ana"),
        ("agent", "<b>Hi</b> & welcome", "Ana"),  # as text: the widget sets textContent
    ]
    assert body["held"] is True
    assert body["cursor"] > max(m["id"] for m in body["messages"])  # past the hidden note


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"HTTP_X_VISITOR_TOKEN": ""}, 403, "X-Visitor-Token header is missing"),
        ({"HTTP_X_VISITOR_TOKEN": "guess"}, 403, "does not match"),
        ({"HTTP_ORIGIN": "https://evil.example.net"}, 403, "not allowed"),
    ],
)
def test_a_poll_is_checked_like_every_widget_request(client, started, change, status, error):
    session, headers = started
    response = poll(client, session, {**headers, **change})
    assert response.status_code == status
    assert error in response.json()["error"]


def test_a_poll_of_an_unknown_session_or_a_switched_off_site_is_refused(client, started):
    session, headers = started
    assert (
        client.get(
            "/api/widget/sessions/00000000-0000-0000-0000-000000000000/messages/", **headers
        ).status_code
        == 404
    )
    session.site.is_active = False
    session.site.save()
    response = poll(client, session, headers)
    assert response.status_code == 403 and "switched off" in response.json()["error"]


@pytest.mark.parametrize("after", ["-1", "abc", str(2**63)])
def test_a_bad_cursor_is_a_400(client, started, after):
    session, headers = started
    response = poll(client, session, headers, after=after)
    assert response.status_code == 400
    assert "after" in response.json()["error"]


def test_polls_have_their_own_rate_limit_per_session(client, started, settings):
    settings.WIDGET_POLLS_PER_SESSION_PER_MINUTE = 3
    session, headers = started
    assert [poll(client, session, headers).status_code for _ in range(3)] == [200] * 3
    refused = poll(client, session, headers)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # Polls do not use up the visitor's message budget.
    posted = client.post(
        f"/api/widget/sessions/{session.public_id}/messages/",
        {"text": "hello"},
        content_type="application/json",
        **headers,
    )
    assert posted.status_code == 201


def test_polls_per_ip_are_limited_before_the_session_is_looked_up(client, started, settings):
    settings.WIDGET_POLLS_PER_IP_PER_MINUTE = 2
    session, headers = started
    assert poll(client, session, headers).status_code == 200
    assert poll(client, session, {**headers, "HTTP_X_VISITOR_TOKEN": "guess"}).status_code == 403
    assert poll(client, session, headers).status_code == 429


def test_an_idle_poll_is_one_query(client, started, django_assert_num_queries):
    session, headers = started
    cursor = poll(client, session, headers).json()["cursor"]
    with django_assert_num_queries(1):  # the session, its site, and "anything after the cursor?"
        assert poll(client, session, headers, after=cursor).json()["messages"] == []
    with django_assert_num_queries(2):  # and the messages when there are some
        assert len(poll(client, session, headers, after=0).json()["messages"]) == 1


def test_a_poll_of_a_session_in_the_trash_is_a_404(client, started, admin_role_user):
    from sessions_app.services import session_delete

    session, headers = started
    session_delete(session=session, by=admin_role_user)
    assert poll(client, session, headers).status_code == 404
