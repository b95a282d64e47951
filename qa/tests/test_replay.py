"""Replays: a session's visitor turns asked again of the site's current agent, in a sandbox.

The agents are loopback servers (n8n's Chat Trigger, an OpenAI-compatible endpoint) whose
answers change between the original conversation and the replay; the worker job runs in
process here (tests/test_replay_worker.py runs real worker processes).
"""

import json
import threading
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leadchat.testing import LoopbackServer, RecordedRequest, Reply, free_port
from qa import services as qa_services
from qa.models import QAHistory
from qa.replay.models import Replay, ReplayMessage, ReplayStatus, ReplayTrigger
from qa.replay.services import replay_job_run, replay_process, replay_request, replays_claim
from qa.tests.conftest import login
from sessions_app.delivery.models import Delivery, WebhookEndpoint
from sessions_app.models import (
    AutomationError,
    ChatMessage,
    ChatSession,
    MessageRole,
    QAStatus,
)
from sessions_app.services import session_delete, sessions_purge
from widget.backends.version import agent_config_hash
from widget.models import SiteDailyUsage
from widget.services import widget_message_post, widget_session_start
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

QUESTIONS = ["Do you ship to Spain?", "How much is the Pro plan?"]


@pytest.fixture(autouse=True)
def _budgets(settings):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5
    settings.REPLAY_TIME_BUDGET_SECONDS = 20.0
    settings.REPLAY_TOKEN_BUDGET = 10_000
    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com"]


class ChangingOpenAI:
    """An OpenAI-compatible endpoint: `era` says which answers it gives (before / after a fix)."""

    def __init__(self) -> None:
        self.era = "before"
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.json()
        with self.lock:
            self.requests.append(body)
        question = body["messages"][-1]["content"]
        word = "Old" if self.era == "before" else "New"
        return Reply(
            200,
            {
                "choices": [{"message": {"role": "assistant", "content": f"{word}: {question}"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )


class ChangingN8n:
    """n8n's Chat Trigger, answering differently after the fix; may offer a lead."""

    def __init__(self, *, lead: dict | None = None) -> None:
        self.era = "before"
        self.lead = lead
        self.requests: list[dict] = []

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.json()
        self.requests.append(body)
        word = "Old" if self.era == "before" else "New"
        answer: dict = {"output": f"{word} n8n: {body['chatInput']}"}
        if self.era == "after" and self.lead:
            answer["lead"] = self.lead
        return Reply(200, answer)


def openai_site(url, **config):
    return SiteFactory(
        name="Acme",
        agent_backend="openai",
        agent_config={"base_url": f"{url}/v1", "model": "m-1", "system_prompt": "Be brief."}
        | config,
        agent_secret="sk-test-123",
        greeting="Hi! How can we help?",
    )


def n8n_site(url):
    return SiteFactory(
        name="Acme",
        agent_backend="n8n",
        agent_config={"webhook_url": f"{url}/webhook/chat"},
        greeting="Hi! How can we help?",
    )


def conversation(site, questions=QUESTIONS) -> ChatSession:
    """The original conversation, through the widget's real path."""
    session, _token, _ = widget_session_start(site=site, page_url="https://acme.example.com/")
    for question in questions:
        widget_message_post(session=session, text=question)
    session.refresh_from_db()
    return session


def flag_and_fix(session, qa_user, admin_role_user) -> ChatSession:
    qa_services.qa_mark_issue(session=session, by=qa_user, note="Wrong shipping answer")
    return qa_services.qa_mark_fixed(session=session, by=admin_role_user, feedback="New prompt")


def snapshot(session) -> dict:
    """Everything a replay must leave alone on the real session and its transcript."""
    row = ChatSession.objects.values().get(pk=session.pk)
    messages = list(session.messages.order_by("id").values())
    return {"session": row, "messages": messages}


def test_marking_fixed_queues_a_replay_with_the_move(qa_user, admin_role_user):
    with LoopbackServer(ChangingOpenAI()) as server:
        session = conversation(openai_site(server.url))
    flag_and_fix(session, qa_user, admin_role_user)
    replay = Replay.objects.get(session=session)
    assert (replay.status, replay.trigger, replay.requested_by) == (
        ReplayStatus.QUEUED,
        ReplayTrigger.FIXED,
        admin_role_user,
    )


def test_openai_replay_uses_the_current_agent_and_stands_beside_the_original(
    qa_user, admin_role_user, client, mailoutbox
):
    agent = ChangingOpenAI()
    with LoopbackServer(agent) as server:
        site = openai_site(server.url)
        session = conversation(site)
        old_hash = agent_config_hash("openai", site.agent_config)
        flag_and_fix(session, qa_user, admin_role_user)
        # The developer's fix: a new prompt, and the model answers differently.
        site.agent_config = {**site.agent_config, "system_prompt": "Be accurate."}
        site.save()
        agent.era = "after"
        before = snapshot(session)
        deliveries, errors = Delivery.objects.count(), AutomationError.objects.count()
        usage = list(SiteDailyUsage.objects.values())
        assert replay_job_run("test-worker", 5) == 1

    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.DONE, replay.reason
    assert replay.agent_backend == "openai" and replay.agent_model == "m-1"
    assert replay.agent_config_hash == agent_config_hash("openai", site.agent_config) != old_hash
    assert replay.tokens_used == 30 and replay.visitor_turns == 2
    texts = list(replay.messages.order_by("position").values_list("role", "text"))
    assert texts == [
        ("visitor", QUESTIONS[0]),
        ("ai", f"New: {QUESTIONS[0]}"),
        ("visitor", QUESTIONS[1]),
        ("ai", f"New: {QUESTIONS[1]}"),
    ]
    # The replay's own transcript went to the model, with the new prompt: not the original's.
    second_turn = agent.requests[-1]["messages"]
    assert second_turn[0] == {"role": "system", "content": "Be accurate."}
    assert {"role": "assistant", "content": f"New: {QUESTIONS[0]}"} in second_turn
    assert all("Old:" not in m["content"] for m in second_turn)
    # The sandbox: nothing written to the real session, no email, no delivery, no error,
    # no AI budget counted.
    assert snapshot(session) == before
    assert Delivery.objects.count() == deliveries
    assert AutomationError.objects.count() == errors
    assert list(SiteDailyUsage.objects.values()) == usage
    assert mailoutbox == []

    # Side by side, message by message, in the console.
    login(client, qa_user)
    page = client.get(reverse("admin:qa_replay_change", args=[replay.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 of 3 turns answered differently now." in html  # the greeting is the third
    rows = html.split('<tr class="qa-sbs__row')[1:]
    first = next(row for row in rows if QUESTIONS[0] in row)
    assert f"Old: {QUESTIONS[0]}" in first and f"New: {QUESTIONS[0]}" in first
    assert f"New: {QUESTIONS[1]}" not in first
    assert "qa-sbs__row--changed" in "".join(f'<tr class="qa-sbs__row{row}' for row in rows)


def test_n8n_replay_runs_in_a_sandbox_capturing_no_lead(
    qa_user, admin_role_user, mailoutbox, settings
):
    agent = ChangingN8n(lead={"name": "Ana Silva", "email": "ana@example.com"})
    with LoopbackServer(agent) as server, LoopbackServer() as receiver:
        WebhookEndpoint.objects.create(name="CRM", url=f"{receiver.url}/hook")
        session = conversation(n8n_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        agent.era = "after"
        before = snapshot(session)
        deliveries = Delivery.objects.count()
        replay_job_run("test-worker", 5)
        assert receiver.requests == []

    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.DONE, replay.reason
    replies = list(replay.messages.filter(role=MessageRole.AI).order_by("position"))
    assert [m.text for m in replies] == [f"New n8n: {q}" for q in QUESTIONS]
    # What the lead would have been is on the replay, never on the session.
    assert replies[0].metadata["lead_offered"] == {"name": "Ana Silva", "email": "ana@example.com"}
    assert snapshot(session) == before
    session.refresh_from_db()
    assert (session.lead_email, session.lead_captured_at) == ("", None)
    assert Delivery.objects.count() == deliveries  # no lead webhook queued
    assert mailoutbox == []
    # n8n is told it is a sandbox, under a session id of its own (its memory stays apart).
    replayed = agent.requests[-1]
    assert replayed["metadata"]["sandbox"] is True
    assert replayed["sessionId"] == f"replay-{replay.public_id}" != str(session.public_id)
    assert "sandbox" not in agent.requests[0]["metadata"]  # the visitor's own turn


def test_token_budget_exceeded_fails_the_replay_saying_so(qa_user, admin_role_user, settings):
    settings.REPLAY_TOKEN_BUDGET = 20  # each answer costs 15
    agent = ChangingOpenAI()
    with LoopbackServer(agent) as server:
        session = conversation(openai_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        calls = len(agent.requests)
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.FAILED
    assert replay.reason == (
        "Token budget exceeded: 30 of 20 tokens used after visitor turn 2 of 2."
    )
    assert len(agent.requests) == calls + 2
    assert replay.tokens_used == 30


def test_time_budget_exceeded_fails_the_replay_saying_so(qa_user, admin_role_user, settings):
    settings.REPLAY_TIME_BUDGET_SECONDS = 0.6
    slow = {"on": False}

    def agent(request: RecordedRequest) -> Reply:
        text = request.json()["chatInput"]
        return Reply(200, {"output": f"Answer: {text}"}, delay=0.5 if slow["on"] else 0)

    with LoopbackServer(agent) as server:
        session = conversation(n8n_site(server.url), questions=["one", "two", "three"])
        flag_and_fix(session, qa_user, admin_role_user)
        slow["on"] = True
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.FAILED
    assert replay.reason.startswith("Time budget exceeded: 0.6 s used up")
    # What was answered before the budget ran out is kept, for the reviewer to read.
    assert replay.messages.filter(role=MessageRole.AI, text="Answer: one").exists()


def test_backend_down_fails_the_replay_with_the_reason(qa_user, admin_role_user):
    with LoopbackServer(ChangingN8n()) as server:
        site = n8n_site(server.url)
        session = conversation(site)
    flag_and_fix(session, qa_user, admin_role_user)
    site.agent_config = {"webhook_url": f"http://127.0.0.1:{free_port()}/webhook/chat"}
    site.save()
    errors = AutomationError.objects.count()
    replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.FAILED
    assert replay.reason.startswith("The n8n agent failed at visitor turn 1 (temporary): ")
    assert "could not be reached" in replay.reason
    assert AutomationError.objects.count() == errors  # a replay's failure is not an outage


def test_backend_answering_5xx_fails_the_replay(qa_user, admin_role_user):
    agent = ChangingN8n()
    with LoopbackServer(agent) as server:
        session = conversation(n8n_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        server.responder = lambda request: Reply(503, {"error": "maintenance"})
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.FAILED
    assert "n8n webhook answered HTTP 503." in replay.reason


def test_replay_of_a_session_trashed_after_it_was_queued_fails_with_the_reason(
    qa_user, admin_role_user, agent_user
):
    with LoopbackServer(ChangingN8n()) as server:
        session = conversation(n8n_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        session_delete(session=session, by=agent_user)
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert (replay.status, replay.reason) == (
        ReplayStatus.FAILED,
        "The session is in the trash; restore it before replaying it.",
    )


def test_replay_of_an_erased_session_fails_with_the_reason(qa_user, admin_role_user, agent_user):
    with LoopbackServer(ChangingN8n()) as server:
        session = conversation(n8n_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        replay = Replay.objects.get(session=session)
        session_delete(session=session, by=agent_user)
        sessions_purge(older_than=timedelta(days=3650), trash_older_than=timedelta(0))
        assert not ChatSession.objects.filter(pk=session.pk).exists()
        replay_job_run("test-worker", 5)
    replay.refresh_from_db()
    assert replay.session is None
    assert (replay.status, replay.reason) == (
        ReplayStatus.FAILED,
        "The session no longer exists (it was erased or purged).",
    )


def test_console_replay_of_a_trashed_session_is_recorded_failed_not_a_500(
    client, qa_user, agent_user, make_conversation
):
    session = make_conversation()
    session_delete(session=session, by=agent_user)
    login(client, qa_user)
    response = client.post(reverse("admin:qa_replay_request", args=[session.pk]), follow=True)
    assert response.status_code == 200
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.FAILED
    assert "Replay not run: The session is in the trash" in response.content.decode()


def test_console_replay_of_a_missing_session_says_so(client, qa_user):
    login(client, qa_user)
    response = client.post(reverse("admin:qa_replay_request", args=[987654]), follow=True)
    assert response.status_code == 200
    assert "That session no longer exists; nothing to replay." in response.content.decode()
    assert not Replay.objects.exists()


def test_replay_now_button_queues_one_open_replay_per_session(client, qa_user, make_conversation):
    session = make_conversation()
    login(client, qa_user)
    page = client.get(reverse("admin:sessions_app_chatsession_change", args=[session.pk]))
    assert "Replay now" in page.content.decode()
    url = reverse("admin:qa_replay_request", args=[session.pk])
    first = client.post(url, follow=True)
    assert "Replay queued" in first.content.decode()
    second = client.post(url, follow=True)
    assert "already under way" in second.content.decode()
    [replay] = Replay.objects.filter(session=session)
    assert (replay.trigger, replay.requested_by) == (ReplayTrigger.MANUAL, qa_user)


def test_replay_endpoints_refuse_agents_and_gets(client, agent_user, qa_user, make_conversation):
    session = make_conversation()
    url = reverse("admin:qa_replay_request", args=[session.pk])
    login(client, agent_user)
    assert client.post(url).status_code in (302, 403)
    assert not Replay.objects.exists()
    with pytest.raises(Exception, match="not allowed"):
        replay_request(session=session, by=agent_user)
    login(client, qa_user)
    assert client.get(url).status_code == 405


def test_verify_from_the_replay_marks_passed_through_qa_services(client, qa_user, admin_role_user):
    agent = ChangingOpenAI()
    with LoopbackServer(agent) as server:
        session = conversation(openai_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        agent.era = "after"
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    login(client, qa_user)
    page = client.get(reverse("admin:qa_replay_change", args=[replay.pk])).content.decode()
    assert "Verified by the replay: mark passed" in page
    assert "Still wrong: re-flag the issue" in page
    response = client.post(
        reverse("admin:qa_replay_decide", args=[replay.pk]), {"decision": "passed"}, follow=True
    )
    assert "Session marked passed." in response.content.decode()
    session.refresh_from_db()
    assert (session.qa_status, session.qa_status_by) == (QAStatus.PASSED, qa_user)
    move = QAHistory.objects.filter(session=session, kind=QAHistory.Kind.MOVE).first()
    assert (move.from_status, move.to_status) == (QAStatus.FIXED, QAStatus.PASSED)


def test_reflag_from_the_replay_marks_issue_with_the_note(client, qa_user, admin_role_user):
    with LoopbackServer(ChangingOpenAI()) as server:
        session = conversation(openai_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    login(client, qa_user)
    client.post(
        reverse("admin:qa_replay_decide", args=[replay.pk]),
        {"decision": "issue", "qa_note": "Still quotes the old price"},
    )
    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE
    short = str(replay.public_id)[:8]
    assert session.qa_notes == f"After replay {short}: Still quotes the old price"


def test_decide_refuses_a_bad_decision_and_an_unfinished_replay(client, qa_user, make_conversation):
    session = make_conversation()
    replay, _ = replay_request(session=session, by=qa_user)
    login(client, qa_user)
    url = reverse("admin:qa_replay_decide", args=[replay.pk])
    bad = client.post(url, {"decision": "archived"}, follow=True)
    assert "Choose verify or re-flag." in bad.content.decode()
    early = client.post(url, {"decision": "passed"}, follow=True)
    assert "Only a finished replay can verify or re-flag." in early.content.decode()
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED


def test_a_lapsed_claim_is_taken_over_and_the_first_worker_is_fenced(
    qa_user, admin_role_user, settings
):
    settings.REPLAY_LEASE_SECONDS = 60
    with LoopbackServer(ChangingN8n()) as server:
        session = conversation(n8n_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        now = timezone.now()
        [first] = replays_claim(worker="a", limit=5, now=now)
        # Within the lease nobody else takes it: no replay runs twice at once.
        assert replays_claim(worker="b", limit=5, now=now + timedelta(seconds=59)) == []
        [second] = replays_claim(worker="b", limit=5, now=now + timedelta(seconds=61))
        assert second.pk == first.pk and second.attempts == 2
        replay_process(first)  # the first worker comes back late: its outcome is dropped
        assert not ReplayMessage.objects.exists()
        replay_process(second)
    replay = Replay.objects.get(pk=first.pk)
    assert replay.status == ReplayStatus.DONE
    assert replay.messages.count() == 4  # stored once


def test_console_transcript_shows_each_ai_messages_agent_version(client, qa_user):
    with LoopbackServer(ChangingOpenAI()) as server:
        site = openai_site(server.url)
        session = conversation(site)
    login(client, qa_user)
    html = client.get(
        reverse("admin:sessions_app_chatsession_change", args=[session.pk])
    ).content.decode()
    version = f"openai · m-1 · {agent_config_hash('openai', site.agent_config)}"
    assert html.count(version) == 2 + 1  # two replies and the greeting
    assert ChatMessage.objects.filter(session=session, agent_config_hash="").count() == 2


def test_replay_messages_are_plain_json(qa_user, admin_role_user):
    with LoopbackServer(ChangingOpenAI()) as server:
        session = conversation(openai_site(server.url))
        flag_and_fix(session, qa_user, admin_role_user)
        replay_job_run("test-worker", 5)
    for message in ReplayMessage.objects.all():
        json.dumps(message.metadata)


def test_replay_page_renders_stored_payloads_inert(client, qa_user, admin_role_user):
    from qa.tests.test_xss import PAYLOADS, audit

    hostile = PAYLOADS[:4]

    def agent(request: RecordedRequest) -> Reply:
        body = request.json()
        return Reply(
            200,
            {
                "output": f"echo {body['chatInput']}",
                "lead": {"name": "<script>alert('lead')</script>", "email": "a@example.com"},
            },
        )

    with LoopbackServer(agent) as server:
        session = conversation(n8n_site(server.url), questions=hostile)
        flag_and_fix(session, qa_user, admin_role_user)
        replay_job_run("test-worker", 5)
    replay = Replay.objects.get(session=session)
    assert replay.status == ReplayStatus.DONE, replay.reason
    login(client, qa_user)
    page = audit(client.get(reverse("admin:qa_replay_change", args=[replay.pk])))
    text = "".join(page.text)
    for payload in hostile:
        assert f"echo {payload}".replace("\n", "") in text, payload
    session_page = audit(
        client.get(reverse("admin:sessions_app_chatsession_change", args=[session.pk]))
    )
    assert "Replays and sampling" in "".join(session_page.text)


def test_replays_box_costs_no_query_and_links_to_the_sessions_replays(
    client, qa_user, make_conversation
):
    with_replays, without = make_conversation(), make_conversation(name="Other")
    for _ in range(3):
        replay, _ = replay_request(session=with_replays, by=qa_user)
        Replay.objects.filter(pk=replay.pk).update(status=ReplayStatus.FAILED, reason="old run")
    latest, _ = replay_request(session=with_replays, by=qa_user)
    replay_request(session=without, by=qa_user)
    Replay.objects.filter(session=without).delete()
    login(client, qa_user)

    def page(session):
        url = reverse("admin:sessions_app_chatsession_change", args=[session.pk])
        client.get(url)  # warm the per-process caches
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        return html, len(queries.captured_queries)

    html, count = page(with_replays)
    _, count_without = page(without)
    assert count == count_without
    assert reverse("admin:qa_replay_change", args=[latest.pk]) in html
    assert "Queued" in html
    listed = client.get(reverse("admin:qa_replay_changelist"), {"session": with_replays.pk})
    assert listed.status_code == 200
    assert {r.pk for r in listed.context["cl"].result_list} == set(
        Replay.objects.filter(session=with_replays).values_list("pk", flat=True)
    )
    assert len(listed.context["cl"].result_list) == 4
