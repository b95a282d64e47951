"""Take over, reply, hand back (sessions_app.takeover): the moves, their refusals, the history,
what the visitor and the AI see."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from sessions_app import takeover
from sessions_app.errors import SessionDeleted, TransitionNotAllowed
from sessions_app.history import session_history
from sessions_app.models import ChatMessage, ChatSession, LifecycleHistory, MessageRole
from sessions_app.services import session_delete, session_start
from sessions_app.takeover import (
    InvalidReply,
    RoleRefused,
    SessionHeld,
    agent_reply,
    session_handback,
    session_takeover,
)
from widget import backends
from widget import selectors as widget_selectors
from widget.backends.fake import FakeBackend
from widget.services import widget_message_post
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(name="Acme")


@pytest.fixture
def web_session(site):
    session, _ = session_start(site=site, greeting="Hi! How can we help?")
    return session


@pytest.fixture
def ana(make_user):
    return make_user("agent", username="ana-agent", first_name="Ana")


@pytest.fixture
def bob(make_user):
    return make_user("agent", username="bob-agent", first_name="Bob")


def test_takeover_holds_the_session_writes_history_and_tells_the_visitor(web_session, ana):
    session_takeover(session=web_session, by=ana)

    web_session.refresh_from_db()
    assert web_session.held_by == ana and web_session.held_at is not None
    row = LifecycleHistory.objects.get(session=web_session)
    assert (row.kind, row.from_status, row.to_status, row.by) == ("takeover", "ai", "agent", ana)
    line = web_session.messages.get(role=MessageRole.SYSTEM)
    assert line.text == "Ana from Acme joined the chat"
    # The visitor sees the line (other system notes stay internal); the AI is not shown it.
    assert line in widget_selectors.transcript_for_visitor(web_session)
    assert line not in widget_selectors.recent_turns(web_session, 10)
    entry = session_history(web_session)[0]
    assert (entry.what, entry.change, entry.by) == ("Who answers", "AI agent → Human agent", ana)


def test_the_join_line_uses_the_username_without_a_first_name(web_session, make_user):
    user = make_user("agent", username="carl", first_name="")
    session_takeover(session=web_session, by=user)
    line = web_session.messages.get(role=MessageRole.SYSTEM)
    assert line.text == "carl from Acme joined the chat"


def test_a_second_agent_is_refused_with_the_holders_name(web_session, ana, bob):
    session_takeover(session=web_session, by=ana)
    with pytest.raises(SessionHeld, match=r"Ana \(ana-agent\) holds this session") as refused:
        session_takeover(session=web_session, by=bob)
    assert refused.value.holder == ana
    with pytest.raises(SessionHeld, match="You already hold this session"):
        session_takeover(session=web_session, by=ana)
    assert LifecycleHistory.objects.filter(session=web_session).count() == 1


def test_qa_reviewers_may_not_take_over_reply_or_hand_back(web_session, qa_user, ana):
    with pytest.raises(RoleRefused):
        session_takeover(session=web_session, by=qa_user)
    session_takeover(session=web_session, by=ana)
    with pytest.raises(RoleRefused):
        agent_reply(session=web_session, by=qa_user, text="hello")
    with pytest.raises(RoleRefused):
        session_handback(session=web_session, by=qa_user)


def test_agent_reply_is_stored_with_its_sender_only_for_the_holder(web_session, ana, bob):
    with pytest.raises(SessionHeld, match="take it over first"):
        agent_reply(session=web_session, by=ana, text="Hello")
    session_takeover(session=web_session, by=ana)
    with pytest.raises(SessionHeld, match="Ana"):
        agent_reply(session=web_session, by=bob, text="Hello")

    message = agent_reply(session=web_session, by=ana, text="  Hello, Ana here.  ")
    message.refresh_from_db()
    assert (message.role, message.text, message.sent_by) == ("agent", "Hello, Ana here.", ana)
    assert ChatMessage.objects.filter(session=web_session, role="agent").count() == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("   \n ", "empty"), ("x" * 4001, "longer than 4,000"), ("a\x00b", "NUL")],
)
def test_bad_replies_are_refused_and_store_nothing(web_session, ana, text, reason):
    session_takeover(session=web_session, by=ana)
    before = ChatMessage.objects.count()
    with pytest.raises(InvalidReply, match=reason):
        agent_reply(session=web_session, by=ana, text=text)
    assert ChatMessage.objects.count() == before


def test_a_session_in_the_trash_cannot_be_taken_over_or_answered(web_session, ana, admin_role_user):
    session_takeover(session=web_session, by=ana)
    session_delete(session=web_session, by=admin_role_user)
    with pytest.raises(SessionDeleted, match="trash"):
        agent_reply(session=web_session, by=ana, text="Hello")
    with pytest.raises(SessionDeleted):
        session_takeover(session=ChatSession.objects.get(pk=web_session.pk), by=ana)


def test_handback_by_the_holder_or_an_admin_only(web_session, ana, bob, admin_role_user):
    with pytest.raises(SessionHeld, match="Nobody holds"):
        session_handback(session=web_session, by=ana)
    session_takeover(session=web_session, by=ana)
    with pytest.raises(SessionHeld, match="Only they"):
        session_handback(session=web_session, by=bob)

    session_handback(session=web_session, by=ana)
    web_session.refresh_from_db()
    assert web_session.held_by is None and web_session.held_at is None
    moves = list(
        LifecycleHistory.objects.filter(session=web_session)
        .order_by("at", "id")
        .values_list("from_status", "to_status", "by__username")
    )
    assert moves == [("ai", "agent", "ana-agent"), ("agent", "ai", "ana-agent")]
    assert web_session.messages.filter(role="system").last().text == (
        "Ana left the chat; the assistant answers again"
    )

    session_takeover(session=web_session, by=bob)
    session_handback(session=web_session, by=admin_role_user)  # an admin may release it
    web_session.refresh_from_db()
    assert web_session.held_by is None


def test_sessions_of_ingested_channels_cannot_be_taken_over(ana):
    session, _ = session_start(channel="telegram", external_id="-100")
    with pytest.raises(TransitionNotAllowed, match="Telegram conversations are answered where"):
        session_takeover(session=session, by=ana)


def test_while_held_the_ai_is_not_asked_and_after_hand_back_it_sees_the_agents_turns(
    web_session, ana
):
    fake = FakeBackend(["AI is back."])
    with backends.override("scripted", fake):
        session_takeover(session=web_session, by=ana)
        turn = widget_message_post(session=web_session, text="Is anyone there?")
        assert [m.role for m in turn.messages] == ["visitor"]  # stored, no AI reply
        assert fake.conversations == []

        agent_reply(session=web_session, by=ana, text="Yes, Ana here. Our price is 49 EUR.")
        session_handback(session=web_session, by=ana)
        session = ChatSession.objects.get(pk=web_session.pk)
        turn = widget_message_post(session=session, text="Thanks! And per year?")

    assert [m.role for m in turn.messages] == ["visitor", "ai"]
    history = [(t.role, t.text) for t in fake.conversations[0].history]
    assert ("agent", "Yes, Ana here. Our price is 49 EUR.") in history
    assert history[-1] == ("visitor", "Thanks! And per year?")
    assert all(role != "system" for role, _ in history)  # the join line is not the AI's business


def test_a_takeover_while_a_network_agent_thinks_drops_its_late_answer(site, ana):
    from widget.backends import AgentReply

    site.agent_backend = "n8n"
    site.save()
    session, _ = session_start(site=site)

    class TakenOverWhileThinking(FakeBackend):
        def reply(self, conversation):
            session_takeover(session=ChatSession.objects.get(pk=session.pk), by=ana)
            return AgentReply(text="Late AI answer", model="fake")

    with backends.override("n8n", TakenOverWhileThinking()):
        turn = widget_message_post(session=session, text="Hello?")
    assert [m.role for m in turn.messages] == ["visitor"]
    assert not session.messages.filter(text="Late AI answer").exists()
    assert session.messages.filter(role="system", metadata__kind="takeover").exists()


def test_the_openai_backend_gets_the_agents_turns_as_assistant_messages():
    from widget.backends.openai_compatible import ROLE_MAP

    assert ROLE_MAP["agent"] == "assistant"


# --- Two agents at once, on PostgreSQL ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_agents_taking_over_at_once_one_wins_the_other_is_told_who(site, ana, bob, monkeypatch):
    """Both threads pass a barrier and call session_takeover; the winner holds the row lock a
    moment (its join line is slow), so the loser really waits on the lock, then reads the
    winner as holder and is refused with their name."""
    session, _ = session_start(site=site)
    barrier = threading.Barrier(2, timeout=10)
    real_add = takeover.message_add

    def slow_add(**kwargs):
        time.sleep(0.5)
        return real_add(**kwargs)

    monkeypatch.setattr(takeover, "message_add", slow_add)
    outcomes: dict[str, object] = {}

    def attempt(user):
        def run():
            barrier.wait()
            started = time.monotonic()
            try:
                session_takeover(session=ChatSession.objects.get(pk=session.pk), by=user)
                outcomes[user.username] = "won"
            except SessionHeld as exc:
                outcomes[user.username] = (str(exc), time.monotonic() - started)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=attempt(user)) for user in (ana, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1
    (loser,) = {"ana-agent", "bob-agent"} - set(winners)
    message, waited = outcomes[loser]
    winner_name = "Ana (ana-agent)" if winners == ["ana-agent"] else "Bob (bob-agent)"
    assert message.startswith(f"{winner_name} holds this session")
    assert waited >= 0.4  # it queued on the winner's row lock
    session.refresh_from_db()
    assert session.held_by.username == winners[0]
    assert LifecycleHistory.objects.filter(session=session).count() == 1
    assert ChatMessage.objects.filter(session=session, role="system").count() == 1


def test_taking_over_answers_a_visitors_request_for_a_person(web_session, ana):
    from sessions_app.services import human_request

    human_request(session=web_session)
    takeover.session_takeover(session=web_session, by=ana)
    web_session.refresh_from_db()
    # The request is answered in the takeover's transaction: no longer "needs a human" (nor
    # emailed later), with its own history row beside the takeover's.
    assert web_session.needs_human is False
    assert web_session.human_requested_at is not None
    kinds = list(
        LifecycleHistory.objects.filter(session=web_session).values_list("kind", "by__username")
    )
    assert (LifecycleHistory.Kind.HUMAN, ana.username) in kinds
    assert (LifecycleHistory.Kind.TAKEOVER, ana.username) in kinds
