"""A real `manage.py deliver_webhooks` process runs replays (job `qa-replay`); one killed with
SIGKILL mid-replay loses nothing, and the replay never runs in two workers at once.

The worker opens the test database by name, so the data must be committed: transaction=True.
The agent is a loopback n8n whose first replay call hangs (the worker is killed in it).
"""

import threading
import time
from collections.abc import Iterator

import pytest

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from qa import services as qa_services
from qa.replay.models import Replay, ReplayStatus
from sessions_app.delivery.tests.conftest import WorkerProcess, wait_until
from sessions_app.models import MessageRole
from widget.services import widget_message_post, widget_session_start
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = ["first question", "second question", "third question"]
LEASE = 15  # REPLAY_TIME_BUDGET_SECONDS + WIDGET_AGENT_TIMEOUT + 5: the shortest allowed


class HangingFirstReplay:
    """n8n: answers the visitor; in the replay era its first call hangs, the rest answer."""

    def __init__(self) -> None:
        self.replaying = False
        self.replay_calls: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.json()
        text = body["chatInput"]
        if not body["metadata"].get("sandbox"):
            return Reply(200, {"output": f"Old answer to: {text}"})
        with self.lock:
            self.replay_calls.append((time.monotonic(), text))
            first = len(self.replay_calls) == 1
        if first:
            return Reply(200, {"output": "too late"}, delay=60)
        return Reply(200, {"output": f"New answer to: {text}"})


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop_quietly()


def test_worker_killed_mid_replay_loses_nothing_and_never_runs_it_twice_at_once(
    workers, qa_user, admin_role_user, settings
):
    settings.WIDGET_AGENT_TIMEOUT = 4.0
    agent = HangingFirstReplay()
    with LoopbackServer(agent) as n8n:
        site = SiteFactory(
            name="Acme",
            agent_backend="n8n",
            agent_config={"webhook_url": f"{n8n.url}/webhook/chat"},
        )
        session, _token, _ = widget_session_start(site=site)
        for question in QUESTIONS:
            widget_message_post(session=session, text=question)
        original = list(session.messages.order_by("id").values_list("role", "text"))
        qa_services.qa_mark_issue(session=session, by=qa_user, note="Old answers")
        qa_services.qa_mark_fixed(session=session, by=admin_role_user, feedback="New workflow")
        agent.replaying = True
        env = {
            "WIDGET_AGENT_TIMEOUT": "4",
            "REPLAY_TIME_BUDGET_SECONDS": "6",
            "REPLAY_LEASE_SECONDS": str(LEASE),
            "DELIVERY_LEASE_SECONDS": "2",
            "WEBHOOK_TOTAL_TIMEOUT": "1",
        }
        first = WorkerProcess("--batch-size", "1", env=env)
        workers.append(first)
        # Killed while the agent "thinks" about the first replayed turn.
        assert wait_until(lambda: len(agent.replay_calls) >= 1, timeout=60)
        first.kill()
        killed_at = time.monotonic()
        replay = Replay.objects.get(session=session)
        assert replay.status == ReplayStatus.RUNNING and replay.attempts == 1
        assert replay.messages.count() == 0  # nothing stored half-way

        second = WorkerProcess("--batch-size", "5", env=env)
        workers.append(second)
        done = wait_until(
            lambda: Replay.objects.filter(pk=replay.pk, status=ReplayStatus.DONE).exists(),
            timeout=90,
        )
        code, output = second.terminate()
    assert done, (output, list(Replay.objects.values("status", "attempts", "reason")))
    assert code == 0, output
    replay.refresh_from_db()
    assert replay.attempts == 2
    # The second worker waited for the dead one's lease: it never ran the replay alongside it.
    taken_over = agent.replay_calls[1][0]
    assert taken_over - killed_at > LEASE - 6 - 1  # claimed at most ~6 s before the kill
    assert [text for _, text in agent.replay_calls] == ["first question", *QUESTIONS]
    replies = list(
        replay.messages.filter(role=MessageRole.AI)
        .order_by("position")
        .values_list("text", flat=True)
    )
    assert replies == [f"New answer to: {q}" for q in QUESTIONS]
    assert "too late" not in replies
    assert list(session.messages.order_by("id").values_list("role", "text")) == original
