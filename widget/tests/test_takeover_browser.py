"""Takeover in real Chromium: a visitor on a landing page (another origin) in one browser context,
agents on the dashboard in others. Every "sees it" below waits at most 3 seconds (the issue)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from leadchat.testing import LoopbackServer
from sessions_app.models import ChatSession
from sessions_app.tests.dashboard.test_browser import Problems, sign_in
from widget import backends
from widget.backends.fake import FakeBackend
from widget.tests.factories import SiteFactory
from widget.tests.test_browser import GREETING, landing_page, open_widget, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WITHIN_3_S = 3000


@pytest.fixture
def acme_landing(live_server):
    """Acme's landing page on its own origin, embedding the widget (as in test_browser)."""
    with LoopbackServer() as server:
        server.responder = lambda request: landing_page(live_server.url, "browser-site")
        SiteFactory(
            public_key="browser-site", name="Acme", greeting=GREETING, allowed_origins=[server.url]
        )
        yield server


@pytest.fixture
def ana(make_user):
    return make_user("agent", username="ana-agent", first_name="Ana")


@pytest.fixture
def bob(make_user):
    return make_user("agent", username="bob-agent", first_name="Bob")


# Every agent context a test opens, closed when the test ends: left open, its dashboard page
# would go on polling the live server through the next tests of the same worker.
_opened: list[BrowserContext] = []


@pytest.fixture(autouse=True)
def _close_agent_contexts(transactional_db):
    # Set up after the database fixture, so torn down before its flush: a page still polling
    # during the flush holds locks the TRUNCATE waits for.
    yield
    while _opened:
        _opened.pop().close()


def agent_page(browser: Browser, live_server, user, session: ChatSession) -> tuple[Page, Problems]:
    context = browser.new_context()
    _opened.append(context)
    page = context.new_page()
    problems = Problems(page)
    path = f"/dashboard/sessions/{session.public_id}/"
    sign_in(page, live_server, user, next_path=path)
    return page, problems


def staff_post(page: Page, path: str) -> dict:
    """A POST from the dashboard page's own session (cookie and CSRF token), as its script does."""
    return page.evaluate(
        """async (path) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(path, {method: "POST", credentials: "same-origin",
                headers: {"X-CSRFToken": token, "Content-Type": "application/json"}, body: "{}"});
            return {status: r.status, body: await r.json()};
        }""",
        path,
    )


def test_agent_takes_over_writes_visitor_answers_hand_back_and_the_ai_answers_again(
    page: Page,
    browser: Browser,
    live_server,
    acme_landing,
    ana,
    bob,
):
    fake = FakeBackend(["Our plans start at 49 EUR a month.", "Yearly it is 490 EUR."])
    with backends.override("scripted", fake):
        page.goto(f"{acme_landing.url}/pricing")
        frame = open_widget(page)
        log = frame.locator("#lc-log")
        say(frame, "How much is it?")
        expect(log).to_contain_text("Our plans start at 49 EUR a month.")
        session = ChatSession.objects.get()

        agent, agent_problems = agent_page(browser, live_server, ana, session)
        other, other_problems = agent_page(browser, live_server, bob, session)
        agent.get_by_role("button", name="Take over").click()
        expect(agent.locator("#takeover-state")).to_contain_text("You hold this session")
        # The History panel shows the move without a reload.
        expect(agent.locator('[data-panel="history"]')).to_contain_text("AI agent → Human agent")
        expect(log).to_contain_text("Ana from Acme joined the chat", timeout=WITHIN_3_S)

        # The agent writes (markup stays text), the visitor sees it within 3 s with the name.
        agent.get_by_label("Your message to the visitor").fill("Hi, Ana here. <b>Ask me</b>")
        agent.get_by_role("button", name="Send").click()
        human = frame.locator(".lc-human").last
        expect(human).to_contain_text("Hi, Ana here. <b>Ask me</b>", timeout=WITHIN_3_S)
        expect(human.locator(".lc-author")).to_have_text("Ana")
        assert frame.locator(".lc-human b").count() == 0

        # The visitor answers: no AI reply; the agent's transcript shows it within 3 s.
        say(frame, "Do you have a yearly plan?")
        expect(agent.locator("#transcript")).to_contain_text(
            "Do you have a yearly plan?", timeout=WITHIN_3_S
        )
        assert len(fake.conversations) == 1

        # The second agent's page learns who holds it, and a takeover is refused naming Ana.
        expect(other.locator("#takeover-state")).to_contain_text(
            "Ana (ana-agent) holds this session", timeout=WITHIN_3_S
        )
        expect(other.get_by_role("button", name="Take over")).to_be_hidden()
        refused = staff_post(other, f"/api/sessions/{session.public_id}/takeover/")
        assert refused["status"] == 409
        assert refused["body"]["error"].startswith("Ana (ana-agent) holds this session")
        # That refusal was asked for: its response and console line are not problems.
        other_problems.items[:] = [item for item in other_problems.items if "409" not in item]

        agent.get_by_role("button", name="Hand back to the AI").click()
        expect(agent.locator("#takeover-state")).to_contain_text("The AI answers this session")
        expect(log).to_contain_text("the assistant answers again", timeout=WITHIN_3_S)
        say(frame, "And per year?")
        expect(log).to_contain_text("Yearly it is 490 EUR.")

    # The AI was shown the agent's turn when it answered again.
    assert ("agent", "Hi, Ana here. <b>Ask me</b>") in [
        (t.role, t.text) for t in fake.conversations[1].history
    ]
    # A reload (the visitor coming back) shows what the agent wrote.
    page.reload()
    frame = open_widget(page)
    expect(frame.locator("#lc-log")).to_contain_text("Hi, Ana here. <b>Ask me</b>")
    assert agent_problems.items == [] and other_problems.items == []


def test_the_launcher_shows_an_unread_badge_for_a_message_while_the_chat_is_closed(
    page: Page,
    browser: Browser,
    live_server,
    acme_landing,
    ana,
):
    page.goto(f"{acme_landing.url}/pricing")
    frame = open_widget(page)
    say(frame, "Hello?")
    expect(frame.locator("#lc-log .lc-visitor")).to_have_count(1)
    # The visitor's line shows at once; wait for the AI's answer, so the session and the
    # message are stored (under load the request takes a while).
    expect(frame.locator("#lc-log .lc-agent")).to_have_count(2, timeout=15_000)
    expect(frame.locator("#lc-log .lc-agent").last).not_to_have_class("lc-typing")
    session = ChatSession.objects.get()
    page.get_by_role("button", name="Close chat").click()

    agent, agent_problems = agent_page(browser, live_server, ana, session)
    agent.get_by_role("button", name="Take over").click()
    expect(agent.get_by_label("Your message to the visitor")).to_be_visible()
    agent.get_by_label("Your message to the visitor").fill("Still there? I can help.")
    agent.get_by_role("button", name="Send").click()

    badge = page.locator("[data-leadchat] .b")
    expect(badge).to_be_visible(timeout=WITHIN_3_S + 2000)
    expect(badge).to_have_text("2")  # the join line and the message
    launcher = page.get_by_role("button", name="Open chat (2 unread)")
    launcher.click()
    expect(badge).to_be_hidden()
    expect(frame.locator("#lc-log")).to_contain_text("Still there? I can help.")
    assert agent_problems.items == []


def test_the_agent_sees_the_visitor_typing_in_a_held_session(
    page: Page,
    browser: Browser,
    live_server,
    acme_landing,
    ana,
):
    page.goto(f"{acme_landing.url}/pricing")
    frame = open_widget(page)
    say(frame, "Hello?")
    expect(frame.locator("#lc-log .lc-agent")).to_have_count(2, timeout=15_000)
    session = ChatSession.objects.get()
    agent, agent_problems = agent_page(browser, live_server, ana, session)
    agent.get_by_role("button", name="Take over").click()
    expect(frame.locator("#lc-log")).to_contain_text(
        "Ana from Acme joined the chat", timeout=WITHIN_3_S
    )
    typing = agent.locator("#visitor-typing")
    expect(typing).to_have_count(0)

    # Typing (not sending yet) shows on the agent's page within a poll or so.
    frame.locator("#lc-input").press_sequentially("I would like", delay=50)
    expect(typing).to_have_text("Visitor is typing…", timeout=WITHIN_3_S + 1000)
    # The message itself ends it.
    frame.locator("#lc-input").press("Enter")
    expect(agent.locator("#transcript")).to_contain_text("I would like", timeout=WITHIN_3_S)
    expect(typing).to_have_count(0, timeout=WITHIN_3_S)
    assert agent_problems.items == []
