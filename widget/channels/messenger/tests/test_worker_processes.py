"""A real `manage.py deliver_webhooks` process handles the Messenger inbox, and one killed with
SIGKILL in the middle of it loses nothing and sends no reply twice.

The worker opens the test database by name, so the data must be committed: transaction=True.
The agent is the n8n backend against a loopback "n8n" whose first answer hangs (the worker is
killed while it waits), the Graph API a loopback server recording every Send API call.
"""

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from sessions_app.delivery.tests.conftest import WorkerProcess, wait_until
from sessions_app.models import ChatMessage, Delivery, DeliveryKind, DeliveryStatus, MessageRole
from widget.channels.messenger.models import InboxStatus, MessengerInboxEvent
from widget.channels.messenger.tests.conftest import (
    PAGE_ID,
    PAGE_TOKEN,
    GraphApi,
    text_event,
    webhook_body,
)
from widget.models import BackendName
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db(transaction=True)


class HangingFirstAgent:
    """n8n's Chat Trigger: the first call hangs (the worker dies in it), the rest answer."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        text = request.json()["chatInput"]
        with self.lock:
            self.requests.append(text)
            first = len(self.requests) == 1
        if first:
            return Reply(200, {"output": "too late"}, delay=60)
        return Reply(200, {"output": f"Answer to: {text}"})


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop_quietly()


def test_worker_killed_mid_processing_loses_nothing_and_sends_no_reply_twice(post_webhook, workers):
    agent = HangingFirstAgent()
    graph = GraphApi()
    with LoopbackServer(agent) as n8n, LoopbackServer(graph) as graph_server:
        SiteFactory(
            name="Acme on Facebook",
            messenger_page_id=PAGE_ID,
            messenger_page_token=PAGE_TOKEN,
            agent_backend=BackendName.N8N,
            agent_config={"webhook_url": f"{n8n.url}/webhook/chat"},
        )
        texts = ["first question", "second question", "third question"]
        other = text_event("from another person", psid="7009990000")
        assert post_webhook(webhook_body(*(text_event(t) for t in texts), other)).status_code == 200
        env = {
            "MESSENGER_GRAPH_API_URL": f"{graph_server.url}/v23.0",
            # The shortest lease the system check allows for a 4 s agent budget: the second
            # worker takes the dead one's event over soon after.
            "WIDGET_AGENT_TIMEOUT": "4",
            "MESSENGER_LEASE_SECONDS": "12",
            "DELIVERY_LEASE_SECONDS": "2",
            "WEBHOOK_TOTAL_TIMEOUT": "1",
        }
        first = WorkerProcess("--batch-size", "1", env=env)
        workers.append(first)
        # Killed while the agent thinks about the first message (stored, not yet answered).
        assert wait_until(lambda: len(agent.requests) >= 1, timeout=60)
        first.kill()
        assert ChatMessage.objects.filter(role=MessageRole.VISITOR).count() >= 1
        assert MessengerInboxEvent.objects.filter(status=InboxStatus.PROCESSING).exists()

        second = WorkerProcess("--batch-size", "5", env=env)
        workers.append(second)
        done = wait_until(lambda: len(graph.messages) >= 4, timeout=90)
        # Let it run on a little: a reply sent twice would show up now.
        wait_until(lambda: False, timeout=1.5)
        code, output = second.terminate()
    assert done, (
        output,
        graph.texts,
        list(MessengerInboxEvent.objects.values("status", "attempts")),
    )
    assert code == 0, output
    assert graph.problems == []
    # Every message answered once, the first one by the second worker.
    sent = Counter(graph.texts)
    assert sent == Counter(
        [f"Answer to: {t}" for t in texts] + ["Answer to: from another person"]
    ), graph.texts
    # The person's message, stored before the kill, was not stored again.
    visitor = list(
        ChatMessage.objects.filter(role=MessageRole.VISITOR).values_list("text", flat=True)
    )
    assert Counter(visitor) == Counter([*texts, "from another person"])
    assert "too late" not in graph.texts
    # One person's answers went out in the order they wrote.
    mine = [t for t in graph.texts if t != "Answer to: from another person"]
    assert mine == [f"Answer to: {t}" for t in texts]
    assert set(MessengerInboxEvent.objects.values_list("status", flat=True)) == {InboxStatus.DONE}
    assert set(
        Delivery.objects.filter(kind=DeliveryKind.MESSENGER).values_list("status", flat=True)
    ) == {DeliveryStatus.DELIVERED}


def test_several_workers_answer_every_event_once_and_each_person_in_order(post_webhook, workers):
    """SKIP LOCKED claims on PostgreSQL, conditional UPDATEs on a SQLite file."""
    graph = GraphApi()

    def agent(request: RecordedRequest) -> Reply:
        return Reply(200, {"output": f"Answer to: {request.json()['chatInput']}"}, delay=0.05)

    people = [f"70100{n:05d}" for n in range(4)]
    with LoopbackServer(agent) as n8n, LoopbackServer(graph) as graph_server:
        SiteFactory(
            messenger_page_id=PAGE_ID,
            messenger_page_token=PAGE_TOKEN,
            agent_backend=BackendName.N8N,
            agent_config={"webhook_url": f"{n8n.url}/webhook/chat"},
        )
        events = [text_event(f"{p} message {i}", psid=p) for i in range(4) for p in people]
        assert post_webhook(webhook_body(*events)).status_code == 200
        env = {"MESSENGER_GRAPH_API_URL": f"{graph_server.url}/v23.0"}
        for n in range(3):
            workers.append(WorkerProcess("--batch-size", "2", "--name", f"w{n}", env=env))
        done = wait_until(lambda: len(graph.messages) >= 16, timeout=120)
        wait_until(lambda: False, timeout=1)
        outputs = [worker.terminate() for worker in workers]
    assert done, outputs
    assert all(code == 0 for code, _ in outputs), outputs
    assert graph.problems == []
    assert Counter(graph.texts) == Counter(f"Answer to: {e['message']['text']}" for e in events)
    for person in people:
        answered = [m for m in graph.messages if m["recipient"]["id"] == person]
        assert [m["message"]["text"] for m in answered] == [
            f"Answer to: {person} message {i}" for i in range(4)
        ]
    # One session per person, however many workers stored their messages at once.
    sessions = set(MessengerInboxEvent.objects.values_list("session", flat=True))
    assert len(sessions) == 4


def test_worker_killed_while_a_reply_is_on_the_wire_does_not_send_it_again(post_webhook, workers):
    """Meta's Send API has no idempotency key: a reply whose send a kill cut short may have
    reached the person, so the next worker fails it for a person to redeliver instead of
    sending it a second time; the other replies go out as usual."""
    from sessions_app.delivery import delivery_redeliver
    from sessions_app.models import AutomationError

    # The first reply's Send API call hangs: the worker is killed while it waits on it.
    graph = GraphApi(answers=[Reply(200, {"recipient_id": "x", "message_id": "m_1"}, delay=60)])

    def agent(request: RecordedRequest) -> Reply:
        return Reply(200, {"output": f"Answer to: {request.json()['chatInput']}"})

    with LoopbackServer(agent) as n8n, LoopbackServer(graph) as graph_server:
        SiteFactory(
            name="Acme on Facebook",
            messenger_page_id=PAGE_ID,
            messenger_page_token=PAGE_TOKEN,
            agent_backend=BackendName.N8N,
            agent_config={"webhook_url": f"{n8n.url}/webhook/chat"},
        )
        assert post_webhook(webhook_body(text_event("first question"))).status_code == 200
        env = {
            "MESSENGER_GRAPH_API_URL": f"{graph_server.url}/v23.0",
            "WEBHOOK_TOTAL_TIMEOUT": "10",
            "DELIVERY_LEASE_SECONDS": "30",
        }
        first = WorkerProcess("--batch-size", "1", env=env)
        workers.append(first)
        assert wait_until(lambda: "Answer to: first question" in graph.texts, timeout=60)
        first.kill()
        # The dead worker's claim must run out before another takes the row: make it so now
        # rather than wait half a minute.
        Delivery.objects.filter(kind=DeliveryKind.MESSENGER).update(
            lease_until=timezone.now() - timedelta(seconds=1)
        )
        second = WorkerProcess("--batch-size", "5", env=env)
        workers.append(second)
        assert wait_until(
            lambda: Delivery.objects.filter(
                kind=DeliveryKind.MESSENGER, status=DeliveryStatus.FAILED
            ).exists(),
            timeout=60,
        )
        # The person writes again: that reply goes out as usual.
        assert post_webhook(webhook_body(text_event("second question"))).status_code == 200
        assert wait_until(lambda: "Answer to: second question" in graph.texts, timeout=60)
        wait_until(lambda: False, timeout=1.5)
        assert graph.texts.count("Answer to: first question") == 1, graph.texts
        reply = Delivery.objects.get(kind=DeliveryKind.MESSENGER, status=DeliveryStatus.FAILED)
        assert "does not send it again" in reply.last_error
        attempt = reply.attempt_log.get()
        assert attempt.finished_at is not None and "Interrupted" in attempt.error
        error = AutomationError.objects.get(source=AutomationError.Source.MESSENGER)
        assert "not sent twice" in error.message and error.session_id == reply.session_id

        # A person who checked the conversation sends it again from the admin: it goes out.
        delivery_redeliver(delivery=reply, by=None)
        assert wait_until(
            lambda: graph.texts.count("Answer to: first question") == 2, timeout=60
        ), graph.texts
        code, output = second.terminate()
    assert code == 0, output
    assert graph.problems == []
