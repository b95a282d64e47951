"""A visitor asks for a person: detection in every backend, what the visitor is told (in and
outside the site's opening hours), and the email when nobody takes the request in time."""

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leadchat.testing import LoopbackServer, Reply
from sessions_app import services
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import (
    ChatMessage,
    ChatSession,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    LifecycleHistory,
)
from sessions_app.tests.factories import ChatSessionFactory
from widget import handoff
from widget.backends.human_request import asks_for_human
from widget.models import WEEKDAYS, Site
from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_budget(settings):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    settings.WIDGET_AGENT_CONNECT_TIMEOUT = 0.5


# --- The phrase table ----------------------------------------------------------------------------

ASKS = [
    # English
    "Can I talk to a human?",
    "I want to speak to someone",
    "is there a real person here?",
    "agent",
    "Agent please!",
    "connect me with a live agent",
    "can I chat with a representative",
    # Spanish
    "¿Puedo hablar con una persona?",
    "quiero hablar con un agente",
    "necesito una persona real",
    "humano, por favor",
    # Portuguese
    "Quero falar com um atendente",
    "posso falar com alguém?",
    "prefiro atendimento humano",
    "uma pessoa de verdade, por favor",
    # French
    "Je voudrais parler à un conseiller",
    "je peux parler à quelqu’un ?",
    "une vraie personne svp",
    "un humain s'il vous plaît",
    # German
    "Kann ich mit einem Mitarbeiter sprechen?",
    "Ich möchte mit einem Menschen reden",
    "bitte eine echte Person",
    "Mitarbeiter bitte",
]
DOES_NOT_ASK = [
    "The agent said my order shipped",
    "I work in management",
    "I'm a real estate agent",
    "Our agency needs a quote",
    "What does your human resources module cost?",
    "Who is your travel agent partner?",
    "I already spoke to someone yesterday",  # the past tense is not a request
    "Personne ne m'a répondu",  # French: "nobody answered me"
    "Hablé con un agente ayer",  # Spanish: "I spoke with an agent yesterday"
    "Ich habe mit einem Mitarbeiter gesprochen",  # German, past tense
    "Menschenrechte sind wichtig",
    "Vocês têm atendente no sábado? Qual o preço?",
    "",
]


@pytest.mark.parametrize("text", ASKS)
def test_phrase_table_recognises_a_request_for_a_person(text):
    assert asks_for_human(text), text


@pytest.mark.parametrize("text", DOES_NOT_ASK)
def test_phrase_table_ignores_words_that_only_look_like_one(text):
    assert not asks_for_human(text), text


# --- The scripted agent, through the widget API ----------------------------------------------


def scripted_site(**fields):
    return SiteFactory(public_key="scripted", name="Acme", allowed_origins=[ORIGIN], **fields)


def chat(widget_client, site_key, *texts):
    session_id, token = widget_client.started(site_key=site_key)
    return session_id, [widget_client.say(session_id, token, text) for text in texts]


def closed_all_week_but_today_is_not_open() -> dict:
    """Opening hours that exclude now: every day except today (in UTC)."""
    today = WEEKDAYS[timezone.now().astimezone(ZoneInfo("UTC")).weekday()]
    return {
        "opening_days": [d for d in WEEKDAYS if d != today],
        "opens_at": time(0, 0),
        "closes_at": time(23, 59),
        "hours_timezone": "UTC",
    }


def test_scripted_request_marks_the_session_and_says_someone_will_join(widget_client):
    scripted_site()
    session_id, [response] = chat(widget_client, "scripted", "Can I talk to a human?")

    assert response.status_code == 201
    reply = response.json()["messages"][1]
    assert reply["text"] == handoff.IN_HOURS_REPLY
    session = ChatSession.objects.get(public_id=session_id)
    assert session.needs_human and session.human_requested_at is not None
    [row] = LifecycleHistory.objects.filter(session=session)
    assert (row.kind, row.from_status, row.to_status, row.by) == (
        "human",
        "none",
        "requested",
        None,
    )
    ai = ChatMessage.objects.filter(session=session, role="ai").last()
    assert ai.metadata["kind"] == "handoff" and ai.metadata["handoff"] == "in_hours"


def test_asking_twice_is_one_request(widget_client):
    scripted_site()
    session_id, _ = chat(widget_client, "scripted", "real person please", "agent")
    session = ChatSession.objects.get(public_id=session_id)
    assert session.needs_human
    assert LifecycleHistory.objects.filter(session=session, kind="human").count() == 1


def test_a_message_that_is_not_a_request_follows_the_lead_flow(widget_client):
    scripted_site()
    session_id, [response] = chat(widget_client, "scripted", "The agent said my order shipped")
    assert "name" in response.json()["messages"][1]["text"]
    assert not ChatSession.objects.get(public_id=session_id).needs_human


def test_outside_hours_the_visitor_is_asked_for_an_email_and_the_lead_flow_goes_on(
    widget_client,
):
    scripted_site(**closed_all_week_but_today_is_not_open())
    session_id, responses = chat(
        widget_client, "scripted", "I'd like to speak to someone", "ana@example.com", "Ana Silva"
    )

    asked, after_email, after_name = (r.json()["messages"][-1] for r in responses)
    assert "write back to you by email" in asked["text"]
    assert asked["text"].endswith(handoff.ASK_EMAIL.strip())
    assert asked["expects"] == "email"
    assert "name" in after_email["text"]
    assert "Ana" in after_name["text"]
    session = ChatSession.objects.get(public_id=session_id)
    assert session.lead_email == "ana@example.com" and session.lead_name == "Ana Silva"
    assert session.completion_status == "complete"
    assert session.needs_human  # still waiting for a person: the email is how they answer


def test_outside_hours_with_an_email_already_the_visitor_is_not_asked_again(widget_client):
    scripted_site(**closed_all_week_but_today_is_not_open())
    _, responses = chat(
        widget_client, "scripted", "ana@example.com", "Can I talk to a human? ana@example.com"
    )
    reply = responses[-1].json()["messages"][-1]
    assert "We'll write to ana@example.com." in reply["text"]
    assert reply["expects"] == "text"


# --- n8n ---------------------------------------------------------------------------------------


def n8n_site(url):
    return SiteFactory(
        public_key="n8n-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="n8n",
        agent_config={"webhook_url": f"{url}/webhook/chat"},
    )


def chunk(kind, content=None, **extra):
    value = {"type": kind, "metadata": {"nodeId": "a1", "runIndex": 0}, **extra}
    if content is not None:
        value["content"] = content
    return json.dumps(value) + "\n"


def ndjson(*lines):
    return Reply(200, "".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"})


@pytest.mark.parametrize(
    ("answer", "expected_text"),
    [
        (Reply(200, {"handoff": True}), handoff.IN_HOURS_REPLY),
        (
            Reply(200, {"output": "Of course!", "handoff": True}),
            f"Of course!\n\n{handoff.IN_HOURS_REPLY}",
        ),
        (
            ndjson(chunk("begin"), chunk("item", "One moment."), chunk("end", handoff=True)),
            f"One moment.\n\n{handoff.IN_HOURS_REPLY}",
        ),
        (
            ndjson(
                chunk("begin"),
                chunk("item", '{"output": "Sure", '),
                chunk("item", '"handoff": true}'),
                chunk("end"),
            ),
            f"Sure\n\n{handoff.IN_HOURS_REPLY}",
        ),
    ],
    ids=["json-bare", "json-with-output", "stream-flagged-chunk", "stream-json-document"],
)
def test_n8n_handoff_marks_the_session(widget_client, answer, expected_text):
    with LoopbackServer(lambda r: answer) as server:
        n8n_site(server.url)
        session_id, [response] = chat(widget_client, "n8n-site", "anyone there?")

    assert response.status_code == 201
    assert response.json()["messages"][1]["text"] == expected_text
    assert ChatSession.objects.get(public_id=session_id).needs_human


def test_n8n_false_handoff_or_plain_stream_is_an_ordinary_reply(widget_client):
    answers = [
        Reply(200, {"output": "We ship to Spain.", "handoff": "yes"}),  # only `true` counts
        ndjson(chunk("begin"), chunk("item", "Hello"), chunk("end")),
    ]
    with LoopbackServer(lambda r: answers.pop(0)) as server:
        n8n_site(server.url)
        session_id, responses = chat(widget_client, "n8n-site", "hi", "hello")

    assert [r.json()["messages"][1]["text"] for r in responses] == ["We ship to Spain.", "Hello"]
    assert not ChatSession.objects.get(public_id=session_id).needs_human


def test_n8n_down_still_hands_off_a_visitor_who_asked_for_a_person(widget_client):
    with LoopbackServer(lambda r: Reply(502, "bad gateway")) as server:
        n8n_site(server.url)
        session_id, [response] = chat(widget_client, "n8n-site", "Can I talk to a human?")

    assert response.json()["messages"][1]["text"] == handoff.IN_HOURS_REPLY
    assert ChatSession.objects.get(public_id=session_id).needs_human


# --- OpenAI-compatible ---------------------------------------------------------------------------


def openai_site(url):
    return SiteFactory(
        public_key="openai-site",
        name="Acme",
        allowed_origins=[ORIGIN],
        agent_backend="openai",
        agent_config={"base_url": f"{url}/v1", "model": "test-model"},
        agent_secret="sk-test",
    )


def calls(*functions, content=None):
    return {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": content,
                    "tool_calls": [
                        {
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)},
                        }
                        for i, (name, args) in enumerate(functions)
                    ],
                }
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35},
    }


def test_openai_request_human_tool_is_offered_and_its_call_is_a_handoff(widget_client):
    answers = [calls(("request_human", {"reason": "pricing"}))]
    with LoopbackServer(lambda r: Reply(200, answers.pop(0))) as server:
        openai_site(server.url)
        session_id, [response] = chat(widget_client, "openai-site", "let me talk to a person")

    [request] = server.requests  # no second completion: our own words answer the visitor
    tools = [tool["function"]["name"] for tool in request.json()["tools"]]
    assert tools == ["save_lead", "request_human"]
    assert response.json()["messages"][1]["text"] == handoff.IN_HOURS_REPLY
    session = ChatSession.objects.get(public_id=session_id)
    assert session.needs_human
    ai = ChatMessage.objects.filter(session=session, role="ai").last()
    assert ai.metadata["tokens"] == {"prompt": 30, "completion": 5, "total": 35}


def test_openai_request_human_with_save_lead_keeps_the_lead(widget_client):
    answers = [
        calls(
            ("save_lead", {"name": "Ana Silva", "email": "ana@example.com"}),
            ("request_human", {}),
            content="Sure, Ana.",
        )
    ]
    with LoopbackServer(lambda r: Reply(200, answers.pop(0))) as server:
        openai_site(server.url)
        session_id, [response] = chat(
            widget_client, "openai-site", "I'm Ana Silva, ana@example.com, a human please"
        )

    assert response.json()["messages"][1]["text"] == f"Sure, Ana.\n\n{handoff.IN_HOURS_REPLY}"
    session = ChatSession.objects.get(public_id=session_id)
    assert session.needs_human and session.completion_status == "complete"


def test_openai_without_the_tool_call_is_no_handoff(widget_client):
    answer = {"choices": [{"message": {"role": "assistant", "content": "Our agents are great."}}]}
    with LoopbackServer(lambda r: Reply(200, answer)) as server:
        openai_site(server.url)
        session_id, [response] = chat(widget_client, "openai-site", "are your agents good?")
    assert response.json()["messages"][1]["text"] == "Our agents are great."
    assert not ChatSession.objects.get(public_id=session_id).needs_human


# --- Opening hours ---------------------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0, tz: str = "Europe/Madrid") -> datetime:
    """A moment on weekday `day` of the week of 2026-11-30 (a Monday), in `tz`."""
    monday = datetime(2026, 11, 30, hour, minute, tzinfo=ZoneInfo(tz))
    return monday + timedelta(days=day)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (at(0, 9, 0), True),  # Monday 09:00, opening minute
        (at(0, 8, 59), False),
        (at(4, 17, 29), True),  # Friday, last minute
        (at(4, 17, 30), False),  # closing time is closed
        (at(5, 12, 0), False),  # Saturday
        # 08:30 UTC is 09:30 in Madrid (winter): open, though 08:30 is before opening.
        (datetime(2026, 12, 1, 8, 30, tzinfo=ZoneInfo("UTC")), True),
    ],
)
def test_site_is_open_on_its_days_and_times_in_its_zone(moment, is_open):
    site = SiteFactory.build(
        opening_days=["mon", "tue", "wed", "thu", "fri"],
        opens_at=time(9, 0),
        closes_at=time(17, 30),
        hours_timezone="Europe/Madrid",
    )
    assert handoff.site_is_open(site, now=moment) is is_open


def test_a_window_past_midnight_belongs_to_the_day_it_opened():
    site = SiteFactory.build(
        opening_days=["fri"], opens_at=time(22, 0), closes_at=time(2, 0), hours_timezone="UTC"
    )
    assert handoff.site_is_open(site, now=at(4, 23, tz="UTC"))  # Friday night
    assert handoff.site_is_open(site, now=at(5, 1, tz="UTC"))  # Saturday 01:00, Friday's night
    assert not handoff.site_is_open(site, now=at(5, 23, tz="UTC"))  # Saturday night
    assert not handoff.site_is_open(site, now=at(4, 1, tz="UTC"))  # Friday 01:00 is Thursday's


def test_a_site_without_hours_is_always_open():
    assert handoff.site_is_open(SiteFactory.build(), now=at(6, 3))
    assert handoff.site_is_open(None)


def test_opening_hours_text():
    site = SiteFactory.build(
        opening_days=["mon", "tue", "wed", "thu", "fri"],
        opens_at=time(9, 0),
        closes_at=time(17, 30),
        hours_timezone="Europe/Madrid",
    )
    assert handoff.opening_hours_text(site) == "Mon-Fri 09:00-17:30 Europe/Madrid"


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"opening_days": ["monday"]}, "opening_days"),
        ({"opening_days": "mon"}, "opening_days"),
        ({"opens_at": time(9, 0)}, "closes_at"),
        ({"opens_at": time(9, 0), "closes_at": time(9, 0)}, "closes_at"),
        ({"hours_timezone": "Moon/Base"}, "hours_timezone"),
        ({"hours_timezone": "../../etc/passwd"}, "hours_timezone"),
        ({"notify_emails": ["not-an-email"]}, "notify_emails"),
        ({"notify_emails": "sales@example.com"}, "notify_emails"),
    ],
)
def test_site_clean_refuses_bad_hours_and_notify_lists(fields, field_name):
    site = SiteFactory.build(**fields)
    with pytest.raises(ValidationError) as caught:
        site.clean()
    assert field_name in caught.value.message_dict


def test_site_clean_accepts_good_hours_and_notify_list():
    SiteFactory.build(
        opening_days=["sat", "sun"],
        opens_at=time(10, 0),
        closes_at=time(14, 0),
        hours_timezone="America/Sao_Paulo",
        notify_emails=["sales@example.com", "ana@example.com"],
    ).clean()


# --- The email when nobody takes the request (worker on a fake clock) ---------------------------


@pytest.fixture
def waiting(settings):
    """A session whose visitor asked for a person at `t0` on a site with a notify list."""
    settings.HANDOFF_EMAIL_AFTER_MINUTES = 3
    settings.PUBLIC_BASE_URL = "https://leadchat.example.com"
    site = SiteFactory(name="Acme <Shop>", notify_emails=["sales@example.com"])
    session = ChatSessionFactory(
        site=site, lead_name="<b>Ana</b>", page_url="https://landing.example.com/pricing"
    )
    t0 = timezone.now() - timedelta(hours=1)
    services.human_request(session=session, now=t0)
    return session, t0


def handoff_emails():
    return Delivery.objects.filter(kind=DeliveryKind.EMAIL, event_type=handoff.HANDOFF_EMAIL_EVENT)


def test_a_request_nobody_took_is_emailed_once_after_the_delay(waiting, mailoutbox):
    session, t0 = waiting
    worker = DeliveryWorker(name="w1", close_idle_sessions=False)

    assert handoff.handoff_emails_queue(now=t0 + timedelta(minutes=2, seconds=59)) == 0
    assert not handoff_emails().exists()

    later = t0 + timedelta(minutes=3)
    assert handoff.handoff_emails_queue(now=later) == 1
    assert handoff.handoff_emails_queue(now=later + timedelta(minutes=10)) == 0  # once
    [delivery] = handoff_emails()
    assert delivery.payload["to"] == ["sales@example.com"]
    assert delivery.session_id == session.pk

    # The outbox row is due from when it was written (the real clock).
    assert worker.run_batch() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    [email] = mailoutbox
    assert email.to == ["sales@example.com"]
    assert "<b>Ana</b> is waiting for a person" in email.subject
    url = f"https://leadchat.example.com/dashboard/sessions/{session.public_id}/"
    assert url in email.body
    assert "https://landing.example.com/pricing" in email.body
    html = email.alternatives[0][0]
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<b>Ana</b>" not in html
    assert "Acme &lt;Shop&gt;" in html


def test_a_request_taken_in_time_is_never_emailed(waiting, agent_user):
    session, t0 = waiting
    assert services.human_request_clear(
        session=session, by=agent_user, now=t0 + timedelta(minutes=2)
    )
    assert handoff.handoff_emails_queue(now=t0 + timedelta(minutes=30)) == 0
    assert not handoff_emails().exists()
    moves = list(LifecycleHistory.objects.filter(session=session).values_list("to_status", "by"))
    assert moves == [("none", agent_user.pk), ("requested", None)]


def test_a_new_request_after_a_cleared_one_gets_its_own_email(waiting, agent_user):
    session, t0 = waiting
    handoff.handoff_emails_queue(now=t0 + timedelta(minutes=5))
    services.human_request_clear(session=session, by=agent_user)
    t1 = timezone.now()
    services.human_request(session=session, now=t1)
    assert handoff.handoff_emails_queue(now=t1 + timedelta(minutes=3)) == 1
    assert handoff_emails().count() == 2


def test_a_site_without_a_notify_list_is_handled_without_an_email(waiting):
    session, t0 = waiting
    session.site.notify_emails = []
    session.site.save()
    assert handoff.handoff_emails_queue(now=t0 + timedelta(minutes=5)) == 1
    assert not handoff_emails().exists()
    assert handoff.handoff_emails_queue(now=t0 + timedelta(minutes=6)) == 0


def test_the_worker_loop_runs_the_handoff_job(waiting, mailoutbox):
    # The real clock: the request was made an hour ago, well past the delay.
    DeliveryWorker(name="w1", close_idle_sessions=False, poll_seconds=0).run(once=True)
    [email] = mailoutbox
    assert email.to == ["sales@example.com"]


# --- The site admin ----------------------------------------------------------------------------


def test_admin_sets_opening_hours_and_the_notify_list(client, admin_role_user):
    from widget.tests.test_admin import form_data

    client.force_login(admin_role_user)
    site = SiteFactory()
    response = client.post(
        f"/admin/widget/site/{site.pk}/change/",
        form_data(
            opening_days=["mon", "fri"],
            opens_at="09:00",
            closes_at="17:30",
            hours_timezone="Europe/Madrid",
            notify_text="sales@example.com\nana@example.com, sales@example.com",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    site.refresh_from_db()
    assert site.opening_days == ["mon", "fri"]
    assert (site.opens_at, site.closes_at) == (time(9, 0), time(17, 30))
    assert site.hours_timezone == "Europe/Madrid"
    assert site.notify_emails == ["sales@example.com", "ana@example.com"]
    page = client.get(f"/admin/widget/site/{site.pk}/change/").content.decode()
    assert "Requests for a person" in page and "sales@example.com\nana@example.com" in page


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"notify_text": "sales@example.com\nnot an email"}, "notify_text"),
        ({"opens_at": "09:00"}, "closes_at"),
        ({"opens_at": "09:00", "closes_at": "17:00", "hours_timezone": "Mars/Olympus"}, None),
    ],
)
def test_admin_refuses_bad_hours_or_addresses_naming_the_field(
    client, admin_role_user, fields, error_field
):
    from widget.tests.test_admin import form_data

    client.force_login(admin_role_user)
    response = client.post("/admin/widget/site/add/", form_data(**fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert (error_field or "hours_timezone") in errors or "__all__" in errors, errors
    assert not Site.objects.exists()


# --- Races (PostgreSQL: real row locks) ------------------------------------------------------


def race(*jobs):
    """Run each job in its own thread and connection, all released at once; their results."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list = []

    def run(index, job):
        try:
            barrier.wait()
            results[index] = job()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_email_a_request_once(waiting):
    _, t0 = waiting
    later = t0 + timedelta(minutes=10)
    results = race(*[lambda: handoff.handoff_emails_queue(now=later)] * 3)
    assert sorted(results) == [0, 0, 1]
    assert handoff_emails().count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_clear_racing_the_email_job_leaves_a_consistent_outcome(waiting, agent_user):
    session, t0 = waiting
    later = t0 + timedelta(minutes=10)
    emailed, cleared = race(
        lambda: handoff.handoff_emails_queue(now=later),
        lambda: services.human_request_clear(
            session=ChatSession.objects.get(pk=session.pk), by=agent_user
        ),
    )
    assert cleared is True  # the agent's take always wins over the email
    session.refresh_from_db()
    assert not session.needs_human
    # Either the email got out before the agent took it (then it was queued while the request
    # was open, under the row lock) or it was never queued: never both an email and a claim
    # made after the clear.
    assert handoff_emails().count() == emailed
    assert (session.human_notified_at is not None) == bool(emailed)


def test_a_notify_list_stored_around_the_admin_never_splits_into_characters():
    assert handoff.notify_recipients(SiteFactory.build(notify_emails="sales@example.com")) == []
    site = SiteFactory.build(notify_emails=[" sales@example.com", 7, "nobody", None])
    assert handoff.notify_recipients(site) == ["sales@example.com"]
    assert handoff.notify_recipients(None) == []
