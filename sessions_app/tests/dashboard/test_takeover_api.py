"""Staff API of the takeover: the whole flow through the API (as a script would, with tokens),
each role, each refusal (409 naming the holder, 400 for bad text, 404, 403), the live poll."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from sessions_app.models import ChatMessage, ChatSession, LifecycleHistory
from sessions_app.services import session_delete, session_start
from widget import backends
from widget.backends.fake import FakeBackend
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"


def url(session, name):
    return reverse(f"staff-api:session-{name}", args=[session.public_id])


@pytest.fixture
def site():
    return SiteFactory(name="Acme", public_key="acme", allowed_origins=[ORIGIN])


@pytest.fixture
def visitor(client, site):
    """A real widget session started through the public API: (session, visitor headers)."""
    response = client.post(
        "/api/widget/sessions/",
        {"site_key": "acme"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    )
    assert response.status_code == 201
    body = response.json()
    headers = {"HTTP_ORIGIN": ORIGIN, "HTTP_X_VISITOR_TOKEN": body["visitor_token"]}
    return ChatSession.objects.get(public_id=body["session_id"]), headers


@pytest.fixture
def ana(make_user):
    return make_user("agent", username="ana-agent", first_name="Ana")


@pytest.fixture
def bob(make_user):
    return make_user("agent", username="bob-agent", first_name="Bob")


def widget_post(client, session, headers, text):
    return client.post(
        f"/api/widget/sessions/{session.public_id}/messages/",
        {"text": text},
        content_type="application/json",
        **headers,
    )


def widget_poll(client, session, headers, after=0):
    return client.get(
        f"/api/widget/sessions/{session.public_id}/messages/", {"after": after}, **headers
    )


def test_the_whole_flow_through_the_staff_api_with_tokens(client, visitor, ana, bob, token_client):
    session, headers = visitor
    as_ana, as_bob = token_client(ana), token_client(bob)
    fake = FakeBackend(["Our plans start at 49 EUR.", "Yes, yearly is 490 EUR."])
    with backends.override("scripted", fake):
        assert widget_post(client, session, headers, "How much is it?").status_code == 201
        cursor = widget_poll(client, session, headers).json()["cursor"]

        taken = as_ana.post(url(session, "takeover"))
        assert taken.status_code == 200, taken.content
        assert taken.json()["held_by"] == "ana-agent"
        assert taken.json()["held_by_name"] == "Ana"
        assert taken.json()["reply_blocked"] is None

        refused = as_bob.post(url(session, "takeover"))
        assert refused.status_code == 409
        assert refused.json()["error"].startswith("Ana (ana-agent) holds this session")
        assert as_bob.post(url(session, "messages"), {"text": "Hi"}, format="json").status_code == (
            409
        )

        sent = as_ana.post(url(session, "messages"), {"text": "Hi, Ana here!"}, format="json")
        assert sent.status_code == 201, sent.content
        assert sent.json()["message"]["role"] == "agent"
        assert sent.json()["message"]["sent_by"] == "ana-agent"

        # The visitor's poll brings the join line and the agent's message, with the name.
        polled = widget_poll(client, session, headers, after=cursor).json()
        assert [(m["role"], m["text"], m["author"]) for m in polled["messages"]] == [
            ("system", "Ana from Acme joined the chat", "Ana"),
            ("agent", "Hi, Ana here!", "Ana"),
        ]
        assert polled["held"] is True

        # The visitor answers: stored, no AI reply; the agent's poll sees it.
        answered = widget_post(client, session, headers, "Great, and per year?")
        assert [m["role"] for m in answered.json()["messages"]] == ["visitor"]
        agent_cursor = sent.json()["message"]["id"]
        live = as_ana.get(url(session, "messages"), {"after": agent_cursor}).json()
        assert [(m["role"], m["text"]) for m in live["messages"]] == [
            ("visitor", "Great, and per year?")
        ]
        assert live["held_by"] == "ana-agent"

        assert as_bob.post(url(session, "handback")).status_code == 409
        back = as_ana.post(url(session, "handback"))
        assert back.status_code == 200 and back.json()["held_by"] is None
        again = widget_post(client, session, headers, "Can I pay yearly?")

    assert [m["role"] for m in again.json()["messages"]] == ["visitor", "ai"]
    assert len(fake.conversations) == 2  # asked before the takeover and after the hand back
    shown = [(t.role, t.text) for t in fake.conversations[1].history]
    assert ("agent", "Hi, Ana here!") in shown
    moves = LifecycleHistory.objects.filter(session=session, kind="takeover")
    assert moves.count() == 2
    # The visitor's transcript (a reload, or coming back later) has what the agent wrote.
    transcript = client.get(f"/api/widget/sessions/{session.public_id}/", **headers).json()
    assert ("agent", "Hi, Ana here!") in [(m["role"], m["text"]) for m in transcript["messages"]]


def test_qa_reviewers_are_read_only(api, visitor, qa_user, ana):
    session, _ = visitor
    as_qa = api(qa_user)
    for name in ("takeover", "handback"):
        response = as_qa.post(url(session, name))
        assert response.status_code == 403
        assert "QA reviewers only read" in response.json()["error"]
    assert as_qa.post(url(session, "messages"), {"text": "hi"}, format="json").status_code == 403
    assert as_qa.get(url(session, "messages")).status_code == 200  # may watch
    session.refresh_from_db()
    assert session.held_by is None


def test_anonymous_and_roleless_users_are_refused(api, visitor, no_role_user):
    session, _ = visitor
    assert api().post(url(session, "takeover")).status_code in (401, 403)
    assert api().get(url(session, "messages")).status_code in (401, 403)
    assert api(no_role_user).post(url(session, "takeover")).status_code == 403


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"text": ""}, "The message is empty."),
        ({"text": "  \n "}, "The message is empty."),
        ({"text": "x" * 4001}, "longer than 4,000"),
        ({"text": 42}, "must be text"),
        ({}, "missing"),
    ],
)
def test_bad_replies_are_a_400_naming_the_reason_and_store_nothing(api, visitor, ana, body, reason):
    session, _ = visitor
    as_ana = api(ana)
    as_ana.post(url(session, "takeover"))
    before = ChatMessage.objects.count()
    response = as_ana.post(url(session, "messages"), body, format="json")
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert ChatMessage.objects.count() == before


def test_a_reply_to_a_session_nobody_holds_is_a_409(api, visitor, ana):
    session, _ = visitor
    response = api(ana).post(url(session, "messages"), {"text": "Hello"}, format="json")
    assert response.status_code == 409
    assert "take it over first" in response.json()["error"]


def test_a_deleted_session_is_refused_and_an_unknown_one_is_404(api, visitor, ana, admin_role_user):
    session, _ = visitor
    as_ana = api(ana)
    as_ana.post(url(session, "takeover"))
    session_delete(session=session, by=admin_role_user)
    response = as_ana.post(url(session, "messages"), {"text": "Hello"}, format="json")
    assert response.status_code == 409
    assert "trash" in response.json()["error"]
    assert as_ana.post(url(session, "takeover")).status_code == 409

    ghost = ChatSession(public_id=uuid.uuid4())
    assert as_ana.post(url(ghost, "takeover")).status_code == 404
    assert as_ana.get(url(ghost, "messages")).status_code == 404


def test_the_live_poll_refuses_a_bad_cursor(api, visitor, ana):
    session, _ = visitor
    response = api(ana).get(url(session, "messages"), {"after": "-1"})
    assert response.status_code == 400
    assert "after" in response.json()["error"]


def test_the_live_poll_is_one_query_for_the_messages_whatever_the_transcript(
    api, visitor, ana, django_assert_max_num_queries
):
    session, _ = visitor
    as_ana = api(ana)
    as_ana.post(url(session, "takeover"))
    for n in range(30):
        as_ana.post(url(session, "messages"), {"text": f"message {n}"}, format="json")
    last = ChatMessage.objects.filter(session=session).latest("id").pk
    with django_assert_max_num_queries(6):  # session, auth, user's perms, messages, state
        body = as_ana.get(url(session, "messages"), {"after": last}).json()
    assert body["messages"] == [] and body["cursor"] == last


def test_history_panel_shows_the_takeover_moves(api, visitor, ana):
    session, _ = visitor
    as_ana = api(ana)
    as_ana.post(url(session, "takeover"))
    as_ana.post(url(session, "handback"))
    page = as_ana.get(reverse("dashboard:session", args=[session.public_id]))
    html = page.content.decode()
    assert "Who answers" in html
    assert "AI agent → Human agent" in html and "Human agent → AI agent" in html


def test_ingested_channel_sessions_cannot_be_taken_over(api, ana):
    session, _ = session_start(channel="whatsapp", external_id="+3312345")
    response = api(ana).post(url(session, "takeover"))
    assert response.status_code == 409
    assert "WhatsApp conversations are answered where they run" in response.json()["error"]
