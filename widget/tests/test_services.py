"""widget.services with the fake backend, and the scripted agent's conversation path."""

import pytest
from django.db import connection

from sessions_app.models import AutomationError, ChatMessage, ChatSession, CompletionStatus
from widget import backends
from widget.backends import AgentReply, BackendError, LeadFields
from widget.backends.fake import FakeBackend
from widget.services import FALLBACK_REPLY, widget_message_post, widget_session_start
from widget.tests.factories import SiteFactory


@pytest.fixture
def session(db):
    site = SiteFactory(public_key="svc", greeting="Hello!")
    session, _, _ = widget_session_start(site=site)
    return session


@pytest.mark.django_db(transaction=True)
def test_visitor_message_is_committed_before_the_backend_runs():
    site = SiteFactory(public_key="svc")
    session, _, _ = widget_session_start(site=site)
    seen = {}

    class Probe(FakeBackend):
        def reply(self, conversation):
            seen["in_transaction"] = connection.in_atomic_block
            seen["stored"] = list(
                ChatMessage.objects.filter(session=session, role="visitor").values_list(
                    "text", flat=True
                )
            )
            return AgentReply(text="ok")

    with backends.override("scripted", Probe()):
        widget_message_post(session=session, text="Keep me safe")

    assert seen == {"in_transaction": False, "stored": ["Keep me safe"]}


def test_backend_crash_is_a_fallback_not_a_500(session):
    fake = FakeBackend([ZeroDivisionError("bug in backend")])
    with backends.override("scripted", fake):
        turn = widget_message_post(session=session, text="hello")

    assert [m.role for m in turn.messages] == ["visitor", "ai"]
    assert turn.messages[1].text.startswith(FALLBACK_REPLY)
    error = AutomationError.objects.get()
    assert "ZeroDivisionError" in error.message
    assert error.details["permanent"] is True


def test_backend_sees_history_lead_and_site_settings(session):
    session.site.agent_config = {"quick_replies": ["A"]}
    session.site.save()
    fake = FakeBackend(["first", "second"])
    with backends.override("scripted", fake):
        widget_message_post(session=session, text="one")
        widget_message_post(session=session, text="two")

    conversation = fake.conversations[-1]
    assert [(t.role, t.text) for t in conversation.history] == [
        ("ai", "Hello!"),
        ("visitor", "one"),
        ("ai", "first"),
        ("visitor", "two"),
    ]
    assert conversation.session_id == str(session.public_id)
    assert conversation.config == {"quick_replies": ["A"]}
    assert conversation.remaining() > 0


def test_history_is_capped(session, settings):
    settings.WIDGET_AGENT_HISTORY_MESSAGES = 3
    fake = FakeBackend()
    with backends.override("scripted", fake):
        for text in ("a", "b", "c"):
            widget_message_post(session=session, text=text)

    assert [t.text for t in fake.conversations[-1].history] == ["b", "OK.", "c"]


def test_reply_metadata_records_backend_model_latency_and_tokens(session):
    reply = AgentReply(
        text="Hi", model="m-1", tokens={"prompt": 3, "completion": 2, "total": 5}, expects="email"
    )
    with backends.override("scripted", FakeBackend([reply])):
        turn = widget_message_post(session=session, text="hello")

    metadata = turn.messages[1].metadata
    assert metadata["backend"] == "scripted"
    assert metadata["model"] == "m-1"
    assert metadata["tokens"] == {"prompt": 3, "completion": 2, "total": 5}
    assert metadata["expects"] == "email"
    assert isinstance(metadata["latency_ms"], int)


def test_partial_lead_from_a_failed_backend_is_kept(session):
    error = BackendError("late", permanent=False, partial_lead=LeadFields(name="Ana"))
    with backends.override("scripted", FakeBackend([error])):
        widget_message_post(session=session, text="something")

    session.refresh_from_db()
    assert session.lead_name == "Ana"


# --- the scripted agent ----------------------------------------------------------------------


def scripted_chat(session, *texts):
    replies = []
    for text in texts:
        turn = widget_message_post(session=session, text=text)
        replies.append(turn.messages[-1])
    session.refresh_from_db()
    return replies


def test_scripted_walks_need_name_email_thanks(session):
    replies = scripted_chat(session, "I need a quote", "ana silva", "ana@example.com")

    assert "your name" in replies[0].text
    assert replies[1].text == "Thanks, Ana! What's the best email to reach you?"
    assert replies[1].metadata["expects"] == "email"
    assert "thank you Ana" in replies[2].text
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email) == ("Ana Silva", "ana@example.com")
    assert session.lead_data == {"need": "I need a quote"}


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("ana@example", "It should have a period"),
        ("ana@@example.com", "@"),
        ("@example.com", "before the @-sign"),
        ("ana@exa mple.com", "period"),
    ],
)
def test_scripted_reasks_with_the_reason_while_email_is_invalid(session, email, reason):
    replies = scripted_chat(session, "quote", "Ana", email)

    assert replies[-1].text.startswith("That email doesn't look right:")
    assert reason in replies[-1].text
    assert replies[-1].metadata["expects"] == "email"
    assert session.completion_status == CompletionStatus.IN_PROGRESS
    assert session.lead_email == ""


def test_scripted_reasks_when_there_is_no_email_at_all(session):
    replies = scripted_chat(session, "quote", "Ana", "why do you need it?")

    assert "couldn't find an email" in replies[-1].text
    assert replies[-1].metadata["step"] == "email"


def test_scripted_takes_name_and_email_offered_unasked(session):
    replies = scripted_chat(session, "I'm Ana, ana@example.com")

    assert "thank you Ana" in replies[0].text
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email) == ("Ana", "ana@example.com")


def test_scripted_takes_email_early_then_asks_for_the_name(session):
    replies = scripted_chat(session, "Pricing please, reach me at bo@example.org", "Bo Berg")

    assert "may I have your name" in replies[0].text
    assert session.lead_email == "bo@example.org"
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.lead_name == "Bo Berg"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My name is Ana Silva and I need help", "Ana Silva"),
        ("Hi, this is Jonas from Nordlys", "Jonas"),
        ("I am looking for a quote", None),
        ("I'm interested in the pro plan", None),
    ],
)
def test_scripted_picks_names_out_of_sentences(session, text, name):
    scripted_chat(session, text)

    assert session.lead_name == (name or "")


def test_scripted_asks_again_for_a_name_that_is_not_one(session):
    replies = scripted_chat(session, "quote", "what is your pricing for 10 users?")

    assert "didn't catch your name" in replies[-1].text
    assert session.lead_name == ""


def test_scripted_after_completion_keeps_listening(session):
    replies = scripted_chat(session, "I'm Ana, ana@example.com", "Also, do you have an API?")

    assert "the team will see it" in replies[-1].text
    assert ChatSession.objects.get(pk=session.pk).message_count == 5


def test_greeting_offers_quick_replies_from_site_config(db):
    site = SiteFactory(public_key="qr", agent_config={"quick_replies": ["Pricing", "Demo"]})

    _, _, messages = widget_session_start(site=site)

    assert messages[0].metadata["quick_replies"] == ["Pricing", "Demo"]
    assert messages[0].metadata["step"] == "need"


@pytest.mark.django_db
def test_each_backend_sees_the_history_window_it_declares(session, settings):
    settings.WIDGET_AGENT_HISTORY_MESSAGES = 8

    class ShortMemory(FakeBackend):
        history_messages = 3

    full, short = FakeBackend(), ShortMemory()
    with backends.override("scripted", full):
        for n in range(6):
            widget_message_post(session=session, text=f"Question {n}")
    with backends.override("scripted", short):
        widget_message_post(session=session, text="Last question")

    assert len(full.conversations[-1].history) == 8  # the setting
    assert [t.text for t in short.conversations[0].history] == [
        "Question 5",
        "OK.",
        "Last question",
    ]
    assert backends.history_messages("scripted") == 6  # it reads only the last AI step
