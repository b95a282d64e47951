"""The worker's side: inbox events become sessions, messages, agent answers and Send API calls.

The delivery worker runs in-process (`DeliveryWorker.run(once=True)`), the Graph API is a
loopback server that records and checks every call, and the agent is the site's real backend
(the scripted one) or a fake one where a test needs a particular answer.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import (
    AutomationError,
    Channel,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MessageRole,
    WebhookEndpoint,
)
from widget import backends
from widget.backends import AgentReply, BackendError
from widget.backends.fake import FakeBackend
from widget.channels.messenger.models import (
    InboxStatus,
    MessengerContact,
    MessengerInboxEvent,
)
from widget.channels.messenger.processing import inbox_claim
from widget.channels.messenger.tests.conftest import (
    PAGE_TOKEN,
    PSID,
    attachment_event,
    echo_event,
    graph_error,
    postback_event,
    quick_reply_event,
    run_worker,
    text_event,
    webhook_body,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def say(post_webhook, page_site):
    """The person writes (Meta posts the webhook), then the worker runs."""

    def send(*events, run=True):
        assert post_webhook(webhook_body(*events)).status_code == 200
        if run:
            run_worker()

    return send


def transcript(session: ChatSession) -> list[tuple[str, str]]:
    return list(session.messages.order_by("created_at", "id").values_list("role", "text"))


def test_a_text_message_is_answered_through_the_send_api(say, graph, page_site):
    fake = FakeBackend([AgentReply(text="We ship everywhere!", quick_replies=["Pricing", "Demo"])])
    with backends.override("scripted", fake):
        say(text_event("Do you ship to Lisbon?"))
    session = ChatSession.objects.get()
    assert session.channel == Channel.MESSENGER
    assert session.site == page_site
    assert transcript(session) == [
        (MessageRole.VISITOR, "Do you ship to Lisbon?"),
        (MessageRole.AI, "We ship everywhere!"),
    ]
    # The agent saw the person's message, as a widget visitor's.
    assert fake.conversations[0].history[-1].text == "Do you ship to Lisbon?"
    # typing_on first, then the reply: path, token, recipient, messaging type, text.
    assert graph.problems == []
    assert graph.actions == ["typing_on"]
    assert [c["body"].get("sender_action", "message") for c in graph.calls] == [
        "typing_on",
        "message",
    ]
    (sent,) = graph.messages
    assert sent["recipient"] == {"id": PSID}
    assert sent["messaging_type"] == "RESPONSE"
    assert sent["message"]["text"] == "We ship everywhere!"
    assert sent["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Pricing", "payload": "Pricing"},
        {"content_type": "text", "title": "Demo", "payload": "Demo"},
    ]
    assert sent["message"]["metadata"].startswith("leadchat:")
    assert graph.calls[1]["path"] == "/v23.0/me/messages"
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.session == session
    assert delivery.attempt_log.count() == 1
    assert MessengerInboxEvent.objects.get().status == InboxStatus.DONE


def test_a_whole_conversation_ends_in_a_lead_delivered_by_the_lead_webhook(say, graph, page_site):
    received = []

    def lead_receiver(request):
        received.append(request.json())
        return Reply(200, {"ok": True})

    with LoopbackServer(lead_receiver) as n8n:
        WebhookEndpoint.objects.create(name="n8n", url=f"{n8n.url}/lead")
        say(text_event("I need a quote for 20 seats"))
        say(text_event("I'm Ana Silva"))
        say(text_event("ana@example.com"))
        run_worker()
    session = ChatSession.objects.get()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email) == ("Ana Silva", "ana@example.com")
    # Each of the person's three messages got the scripted agent's answer through the Send API.
    assert len(graph.texts) == 3
    assert graph.problems == []
    (lead,) = received
    assert lead["data"]["lead"]["email"] == "ana@example.com"
    assert lead["data"]["session"]["channel"] == "messenger"
    # The PSID is Meta's id for the person, never a lead field.
    assert PSID not in str(lead["data"]["lead"])
    assert PSID not in (session.lead_phone + session.lead_name + str(session.lead_data))


def test_quick_reply_payload_and_postback_are_stored(say, graph, page_site):
    say(postback_event(), quick_reply_event("Pricing", "PRICING"))  # one per run: in order
    run_worker()
    session = ChatSession.objects.get()
    visitor = session.messages.filter(role=MessageRole.VISITOR).order_by("id")
    assert [m.text for m in visitor] == ["Get Started", "Pricing"]
    assert visitor[0].metadata["messenger"]["payload"] == "GET_STARTED"
    assert visitor[1].metadata["messenger"]["payload"] == "PRICING"
    assert visitor[1].metadata["messenger"]["kind"] == "quick_reply"


def test_an_attachment_is_a_described_placeholder_and_never_fetched(say, graph, page_site):
    with LoopbackServer() as cdn:
        say(attachment_event("image", f"{cdn.url}/photo.jpg"))
        fetched = list(cdn.requests)
    message = ChatMessage.objects.get(role=MessageRole.VISITOR)
    assert message.text == "[Sent 1 attachment(s): image]"
    assert message.metadata["messenger"]["attachments"] == [
        {"type": "image", "url": f"{cdn.url}/photo.jpg"}
    ]
    assert fetched == []


def test_an_echo_from_metas_inbox_is_an_agent_message_and_our_own_echo_is_skipped(
    say, graph, page_site
):
    say(text_event("Hello?"))
    (ours,) = graph.messages
    fake = FakeBackend()
    with backends.override("scripted", fake):
        say(echo_event("Hi, Maria from the team here", app_id=263902037430900))
        say(echo_event(ours["message"]["text"], metadata=ours["message"]["metadata"]))
    session = ChatSession.objects.get()
    roles = [role for role, _text in transcript(session)]
    assert roles == [MessageRole.VISITOR, MessageRole.AI, MessageRole.AGENT]
    assert transcript(session)[-1][1] == "Hi, Maria from the team here"
    assert fake.conversations == []  # a person's answer is not sent to the AI
    statuses = list(MessengerInboxEvent.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [InboxStatus.DONE, InboxStatus.DONE, InboxStatus.SKIPPED]
    assert len(graph.messages) == 1


def test_one_senders_events_are_claimed_one_at_a_time_in_order(post_webhook, page_site, graph):
    other = text_event("from someone else", psid="7009990000")
    post_webhook(webhook_body(text_event("first"), text_event("second"), other))
    claimed = inbox_claim(worker="w", limit=10)
    # The second of PSID waits for the first; the other person's event goes at once.
    assert [e.payload["message"]["text"] for e in claimed] == ["first", "from someone else"]
    assert inbox_claim(worker="w2", limit=10) == []
    run_worker()  # the claims above are still held: nothing more happens until they expire
    assert MessengerInboxEvent.objects.filter(status=InboxStatus.PENDING).count() == 1


def test_one_senders_messages_are_answered_in_order(say, graph, page_site):
    fake = FakeBackend(["answer one", "answer two", "answer three"])
    with backends.override("scripted", fake):
        say(text_event("one"), text_event("two"), text_event("three"))
    session = ChatSession.objects.get()
    assert [t for _r, t in transcript(session)] == [
        "one",
        "answer one",
        "two",
        "answer two",
        "three",
        "answer three",
    ]
    assert graph.texts == ["answer one", "answer two", "answer three"]


def test_returning_sender_within_the_idle_timeout_continues_the_session(say, graph):
    say(text_event("hello"))
    say(text_event("me again"))
    assert ChatSession.objects.count() == 1
    assert MessengerContact.objects.get().session == ChatSession.objects.get()


def test_returning_sender_after_the_idle_timeout_starts_a_new_session(say, graph, settings):
    say(text_event("hello"))
    ChatSession.objects.update(last_activity_at=timezone.now() - timedelta(minutes=31))
    say(text_event("back next week"))
    assert ChatSession.objects.count() == 2
    assert MessengerContact.objects.get().session == ChatSession.objects.latest("id")


def test_returning_sender_after_a_completed_lead_starts_a_new_session(say, graph):
    say(text_event("need a quote"))
    say(text_event("I'm Ana Silva"))
    say(text_event("ana@example.com"))
    assert ChatSession.objects.get().completion_status == CompletionStatus.COMPLETE
    say(text_event("one more question"))
    assert ChatSession.objects.count() == 2
    newest = ChatSession.objects.latest("id")
    assert newest.completion_status == CompletionStatus.IN_PROGRESS
    assert transcript(newest)[0] == (MessageRole.VISITOR, "one more question")


def test_agent_failure_gets_the_fallback_reply_and_an_agent_error(say, graph):
    fake = FakeBackend([BackendError("n8n is down", permanent=False)])
    with backends.override("scripted", fake):
        say(text_event("hello"))
    assert graph.texts and graph.texts[0].startswith("Sorry, I can't answer right now")
    assert AutomationError.objects.filter(source=AutomationError.Source.AGENT).exists()


def test_no_automated_reply_outside_the_24_hour_window(say, graph, page_site):
    old = text_event("sent yesterday morning")
    old["timestamp"] = int((timezone.now() - timedelta(hours=25)).timestamp() * 1000)
    say(old)
    assert graph.calls == []  # not even "typing"
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.FAILED
    assert "24-hour window" in delivery.last_error
    error = AutomationError.objects.get(source=AutomationError.Source.MESSENGER)
    assert "24-hour window" in error.message


@pytest.mark.parametrize(
    "reply,fix",
    [
        (graph_error(190, 401), "page access token is invalid or expired"),
        (graph_error(10, 400, subcode=2018278), "24 hours"),
        (graph_error(551, 400), "cannot be reached"),
        (graph_error(200, 403), "pages_messaging"),
    ],
    ids=["190-token", "10-window", "551-unavailable", "200-permission"],
)
def test_permanent_graph_errors_fail_at_once_naming_the_fix(say, graph, reply, fix):
    graph.answers = [reply]
    say(text_event("hello"))
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    error = AutomationError.objects.get(source=AutomationError.Source.MESSENGER)
    assert fix in error.message
    assert error.session == delivery.session
    assert PAGE_TOKEN not in error.message + delivery.last_error


@pytest.mark.parametrize(
    "reply",
    [graph_error(613, 400), graph_error(2, 500), Reply(503, "upstream down"), graph_error(4, 400)],
    ids=["613-rate-limit", "2-temporary", "503-no-json", "4-app-rate-limit"],
)
def test_transient_graph_errors_are_retried(say, graph, reply):
    graph.answers = [reply]
    say(text_event("hello"))
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at > timezone.now()
    assert not AutomationError.objects.filter(source=AutomationError.Source.MESSENGER).exists()
    # The next try (the retry clock moved on) goes through.
    Delivery.objects.update(next_attempt_at=timezone.now())
    run_worker()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(graph.messages) == 2


def test_a_graph_api_that_hangs_is_cut_at_the_deadline(say, graph, settings):
    settings.WEBHOOK_TOTAL_TIMEOUT = 0.5
    graph.answers = [Reply(200, {"message_id": "late"}, delay=5)]
    started = timezone.now()
    say(text_event("hello"))
    assert timezone.now() - started < timedelta(seconds=4)
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.PENDING  # retried later
    assert "timeout" in delivery.last_error


def test_a_site_without_a_page_token_fails_the_reply_naming_the_fix(say, graph, page_site):
    page_site.messenger_page_token = ""
    page_site.save()
    say(text_event("hello"))
    delivery = Delivery.objects.get(kind=DeliveryKind.MESSENGER)
    assert delivery.status == DeliveryStatus.FAILED
    assert "page access token" in delivery.last_error
    assert graph.calls == []


def test_an_env_page_token_is_read_from_the_environment(say, graph, page_site, monkeypatch):
    monkeypatch.setenv("LEADCHAT_AGENT_FB_PAGE", PAGE_TOKEN)
    page_site.messenger_page_token = "env:LEADCHAT_AGENT_FB_PAGE"
    page_site.save()
    say(text_event("hello"))
    assert len(graph.messages) == 1
    assert Delivery.objects.get(kind=DeliveryKind.MESSENGER).status == DeliveryStatus.DELIVERED


def test_an_event_that_raises_is_retried_then_failed_with_an_automation_error(
    say, graph, monkeypatch, settings
):
    from widget.channels.messenger import processing

    def boom(event):
        raise RuntimeError("bug in visitor_text")

    monkeypatch.setattr(processing, "visitor_text", boom)
    say(text_event("hello"))
    event = MessengerInboxEvent.objects.get()
    assert event.status == InboxStatus.PENDING
    assert "bug in visitor_text" in event.last_error
    for _ in range(settings.DELIVERY_MAX_CRASHES):
        MessengerInboxEvent.objects.update(next_attempt_at=timezone.now())
        run_worker()
    event.refresh_from_db()
    assert event.status == InboxStatus.FAILED
    assert AutomationError.objects.filter(
        source=AutomationError.Source.MESSENGER, details__mid=event.mid
    ).exists()
    assert not ChatMessage.objects.exists()


def test_a_reclaimed_event_does_not_store_the_message_twice(post_webhook, page_site, graph):
    """A worker died after storing the person's message but before the answer: its lease
    runs out and the next worker answers without storing the message again."""
    from widget.channels.messenger import processing

    post_webhook(webhook_body(text_event("hello")))
    (event,) = inbox_claim(worker="dying", limit=1)

    class Died(BaseException):
        pass

    def die(**kwargs):
        raise Died

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(processing, "agent_answer", die)
        with pytest.raises(Died):
            processing.inbox_event_process(event)
    assert ChatMessage.objects.filter(role=MessageRole.VISITOR).count() == 1
    MessengerInboxEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    run_worker()
    session = ChatSession.objects.get()
    assert [r for r, _t in transcript(session)] == [MessageRole.VISITOR, MessageRole.AI]
    assert len(graph.messages) == 1
    assert MessengerInboxEvent.objects.get().attempts == 2


def test_erasing_a_lead_removes_their_raw_events_and_contact_row(say, graph):
    from sessions_app.services import lead_erase

    say(text_event("need a quote"))
    say(text_event("I'm Ana Silva"))
    say(text_event("ana@example.com"))
    assert MessengerInboxEvent.objects.count() == 3
    lead_erase(email="ana@example.com")
    assert not ChatSession.objects.exists()
    assert not MessengerInboxEvent.objects.exists()
    assert not MessengerContact.objects.exists()
    assert not Delivery.objects.filter(kind=DeliveryKind.MESSENGER).exists()


def test_a_lease_shorter_than_an_answer_is_refused_by_a_system_check(settings):
    from widget.channels.messenger.checks import messenger_lease_outlasts_an_answer

    settings.WIDGET_AGENT_TIMEOUT = 20
    settings.MESSENGER_LEASE_SECONDS = 27
    (error,) = messenger_lease_outlasts_an_answer(None)
    assert error.id == "widget.E101"
    settings.MESSENGER_LEASE_SECONDS = 28  # 20 s agent + 3 s typing + 5 s margin
    assert messenger_lease_outlasts_an_answer(None) == []
