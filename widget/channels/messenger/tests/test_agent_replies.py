"""An agent who took a Messenger conversation over answers through the Send API (outbox
deliveries, the loopback Graph API): RESPONSE inside 24 hours, the HUMAN_AGENT tag up to 7 days
where the site has Meta's permission, refused with the reason after that."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ChatMessage, ChatSession, Delivery, DeliveryStatus, MessageRole
from sessions_app.takeover import (
    ReplyUndeliverable,
    agent_reply,
    reply_blocked,
    session_takeover,
)
from widget import backends
from widget.backends.fake import FakeBackend
from widget.channels.messenger.models import MessengerInboxEvent
from widget.channels.messenger.tests.conftest import PSID, text_event
from widget.channels.messenger.tests.test_processing import run_worker, say  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(make_user):
    return make_user("agent", username="ana-agent", first_name="Ana")


@pytest.fixture
def conversation(say, graph):  # noqa: F811
    """A person wrote on Messenger and the AI answered once."""
    with backends.override("scripted", FakeBackend(["Hi! How can I help?"])):
        say(text_event("Do you ship to Lisbon?"))
    assert graph.texts == ["Hi! How can I help?"]
    return ChatSession.objects.get()


def age_last_message(session: ChatSession, by: timedelta) -> None:
    MessengerInboxEvent.objects.filter(session=session).update(
        event_at=timezone.now() - by, received_at=timezone.now() - by
    )


def test_inside_24_hours_the_reply_is_a_response_through_the_outbox(conversation, graph, ana):
    session_takeover(session=conversation, by=ana)
    message = agent_reply(session=conversation, by=ana, text="Ana here: yes, we do!")
    delivery = Delivery.objects.filter(session=conversation).latest("id")
    assert delivery.status == DeliveryStatus.PENDING  # queued with the message, sent by the worker
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    sent = graph.messages[-1]
    assert sent["recipient"] == {"id": PSID}
    assert sent["messaging_type"] == "RESPONSE" and "tag" not in sent
    assert sent["message"]["text"] == "Ana here: yes, we do!"
    assert graph.problems == []
    assert message.sent_by == ana


def test_while_held_the_person_is_not_answered_by_the_ai(conversation, graph, ana, say):  # noqa: F811
    session_takeover(session=conversation, by=ana)
    fake = FakeBackend(["AI should not say this."])
    with backends.override("scripted", fake):
        say(text_event("Hello? A person please"))
    assert fake.conversations == []
    assert graph.texts == ["Hi! How can I help?"]  # nothing more went out
    assert conversation.messages.filter(role=MessageRole.VISITOR).count() == 2


def test_after_24_hours_with_the_permission_the_reply_is_tagged_human_agent(
    conversation, graph, ana
):
    conversation.site.messenger_human_agent_tag = True
    conversation.site.save()
    session_takeover(session=conversation, by=ana)
    age_last_message(conversation, timedelta(days=3))
    agent_reply(session=conversation, by=ana, text="Sorry for the wait!")
    run_worker()
    sent = graph.messages[-1]
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert graph.problems == []
    assert Delivery.objects.filter(session=conversation).latest("id").status == (
        DeliveryStatus.DELIVERED
    )


def test_after_24_hours_without_the_permission_the_reply_is_refused(conversation, graph, ana):
    session_takeover(session=conversation, by=ana)
    age_last_message(conversation, timedelta(hours=25))
    before = (ChatMessage.objects.count(), Delivery.objects.count())
    with pytest.raises(ReplyUndeliverable, match=r"more than 24 hours old.*Human Agent permission"):
        agent_reply(session=conversation, by=ana, text="Hello?")
    assert (ChatMessage.objects.count(), Delivery.objects.count()) == before


def test_after_7_days_even_the_tag_is_refused(conversation, ana):
    conversation.site.messenger_human_agent_tag = True
    conversation.site.save()
    session_takeover(session=conversation, by=ana)
    age_last_message(conversation, timedelta(days=8))
    assert "more than 7 days old" in reply_blocked(conversation)


def test_the_staff_api_and_the_composer_say_why_it_cannot_send(conversation, ana, client):
    client.force_login(ana)
    session_takeover(session=conversation, by=ana)
    age_last_message(conversation, timedelta(hours=30))
    url = reverse("staff-api:session-messages", args=[conversation.public_id])
    live = client.get(url).json()
    assert "more than 24 hours old" in live["reply_blocked"]
    refused = client.post(url, {"text": "Hi"}, content_type="application/json")
    assert refused.status_code == 409
    assert "more than 24 hours old" in refused.json()["error"]
    page = client.get(reverse("dashboard:session", args=[conversation.public_id]))
    assert "more than 24 hours old" in page.content.decode()


def test_a_takeover_while_the_ai_thinks_sends_no_ai_reply(conversation, graph, ana, say):  # noqa: F811
    class TakenOverWhileThinking(FakeBackend):
        def reply(self, conversation_):
            session_takeover(session=ChatSession.objects.get(pk=conversation.pk), by=ana)
            return super().reply(conversation_)

    with backends.override("scripted", TakenOverWhileThinking(["Too late, AI."])):
        say(text_event("Anyone?"))
    assert "Too late, AI." not in graph.texts
    assert not conversation.messages.filter(text="Too late, AI.").exists()
    assert MessengerInboxEvent.objects.filter(status="done").count() == 2
