"""The widget in a real Chromium, embedded by a landing page on another origin.

The landing pages are served by LoopbackServers on their own ports, so the browser sees a real
cross-origin embed: the script tag, the iframe, the CSP frame-ancestors and CORS all apply.
"""

import pytest
from playwright.sync_api import Page, expect

from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import ChatMessage, ChatSession, CompletionStatus, WidgetOpening
from widget import backends
from widget.backends import AgentReply
from widget.backends.fake import FakeBackend
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GREETING = "Hi! I'm the Acme assistant. What brings you here?"


def landing_page(app_url: str, site_key: str) -> Reply:
    html = f"""<!doctype html><html><head><title>Acme landing</title>
<style>button {{ background: red !important; width: 10px !important; }}
div {{ display: block }}</style>
</head><body><h1>Acme: analytics for teams</h1><p>Best landing page.</p>
<script src="{app_url}/widget/embed.js" data-site="{site_key}" async></script>
</body></html>"""
    return Reply(200, html, headers={"Content-Type": "text/html; charset=utf-8"})


@pytest.fixture
def landing(live_server):
    """A landing page on its own origin, allowed by the site `browser-site`."""
    with LoopbackServer() as server:
        server.responder = lambda request: landing_page(live_server.url, "browser-site")
        SiteFactory(
            public_key="browser-site",
            name="Acme",
            greeting=GREETING,
            theme_color="#6f42c1",
            allowed_origins=[server.url],
        )
        yield server


@pytest.fixture
def watch_errors(page: Page):
    """Fail on any uncaught script error or failed (4xx/5xx) request of the widget."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def open_widget(page: Page):
    page.get_by_role("button", name="Open chat").click()
    frame = page.frame_locator("[data-leadchat] iframe")
    expect(frame.locator("#lc-input")).to_be_visible()
    return frame


def say(frame, text: str) -> None:
    frame.locator("#lc-input").fill(text)
    frame.locator("#lc-input").press("Enter")


def test_visitor_chats_and_leaves_a_lead_from_another_origin(page: Page, landing, watch_errors):
    page.goto(f"{landing.url}/spring?utm_source=google&utm_medium=cpc&utm_campaign=spring")
    assert not ChatSession.objects.exists()  # page views alone do not start conversations

    frame = open_widget(page)
    log = frame.locator("#lc-log")
    expect(log).to_contain_text(GREETING)
    # Quick replies from the greeting are buttons the visitor can press.
    frame.get_by_role("button", name="I'd like a quote").click()
    expect(log).to_contain_text("May I have your name?")

    say(frame, "Ana Silva")
    expect(log).to_contain_text("What's the best email to reach you?")
    expect(frame.locator("#lc-input")).to_have_attribute("type", "email")

    say(frame, "ana@example")
    expect(log).to_contain_text("That email doesn't look right")
    expect(log).to_contain_text("It should have a period")
    session = ChatSession.objects.get()
    assert session.completion_status == CompletionStatus.IN_PROGRESS

    say(frame, "ana@example.com")
    expect(log).to_contain_text("thank you Ana")

    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert (session.lead_name, session.lead_email) == ("Ana Silva", "ana@example.com")
    assert session.page_url.startswith(f"{landing.url}/spring")
    assert (session.utm_source, session.utm_medium, session.utm_campaign) == (
        "google",
        "cpc",
        "spring",
    )
    assert session.message_count == 9
    assert watch_errors == []


def test_reload_resumes_the_same_conversation(page: Page, landing, watch_errors):
    page.goto(landing.url)
    frame = open_widget(page)
    say(frame, "Do you have an API?")
    expect(frame.locator("#lc-log")).to_contain_text("May I have your name?")

    page.reload()
    frame = open_widget(page)

    log = frame.locator("#lc-log")
    expect(log).to_contain_text("Do you have an API?")
    expect(log).to_contain_text("May I have your name?")
    say(frame, "Bo")
    expect(log).to_contain_text("Thanks, Bo!")
    assert ChatSession.objects.count() == 1
    assert ChatSession.objects.get().lead_name == "Bo"
    assert watch_errors == []


def test_inline_email_hint_shows_before_sending(page: Page, landing):
    page.goto(landing.url)
    frame = open_widget(page)
    say(frame, "hello")
    expect(frame.locator("#lc-log")).to_contain_text("May I have your name?")
    say(frame, "Ana")
    expect(frame.locator("#lc-input")).to_have_attribute("type", "email")

    frame.locator("#lc-input").fill("ana@exa")

    expect(frame.locator("#lc-hint")).to_contain_text("looks incomplete")
    expect(frame.locator("#lc-input")).to_have_attribute("aria-invalid", "true")
    frame.locator("#lc-input").fill("ana@example.com")
    expect(frame.locator("#lc-hint")).to_have_text("")


def test_page_from_a_foreign_origin_cannot_use_the_widget(page: Page, live_server, landing):
    with LoopbackServer() as foreign:
        foreign.responder = lambda request: landing_page(live_server.url, "browser-site")
        with page.expect_response(lambda r: "/api/widget/sites/" in r.url) as asked:
            page.goto(foreign.url)
        assert asked.value.status == 403
        page.wait_for_timeout(300)

        # The embed script asked first and draws nothing here: no launcher, no frame (and the
        # browser would refuse to render the widget page inside this origin's page anyway: CSP).
        assert page.locator("[data-leadchat]").count() == 0
        assert page.locator("iframe").count() == 0

        # And the page's own scripts cannot call the API directly (CORS, then the Origin check).
        outcome = page.evaluate(
            """(url) => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                   body: JSON.stringify({site_key: "browser-site"})})
               .then(r => "status " + r.status, () => "blocked")""",
            f"{live_server.url}/api/widget/sessions/",
        )
    assert outcome == "blocked"
    assert not ChatSession.objects.exists()


def test_payloads_in_messages_render_as_inert_text(page: Page, live_server, landing, watch_errors):
    payload = '<img src=x onerror="top.xss=1"><script>top.xss=2</script><b>bold</b>'
    SiteFactory(
        public_key="xss-site",
        name="<svg onload=top.xss=3>",
        greeting=f"Hello {payload}",
        allowed_origins=[landing.url],
    )
    landing.responder = lambda request: landing_page(live_server.url, "xss-site")
    fake = FakeBackend(
        [
            AgentReply(text=f"Reply {payload}", quick_replies=["<i onmouseover=top.xss=4>x</i>"]),
            AgentReply(text="Noted."),
        ]
    )
    with backends.override("scripted", fake):
        page.goto(landing.url)
        frame = open_widget(page)
        log = frame.locator("#lc-log")
        expect(log).to_contain_text(f"Hello {payload}")
        say(frame, f"Visitor {payload}")
        expect(log).to_contain_text(f"Reply {payload}")
        chip = frame.locator(".lc-chip")
        expect(chip).to_have_text("<i onmouseover=top.xss=4>x</i>")
        chip.hover()
        chip.click()
        expect(log).to_contain_text("Noted.")

        assert frame.locator("#lc-log img, #lc-log script, #lc-log b, .lc-chip i").count() == 0
        expect(frame.locator("h1")).to_have_text("<svg onload=top.xss=3>")
        assert page.evaluate("window.xss") is None
        assert page.frames[1].evaluate("window.xss") is None
    assert ChatMessage.objects.filter(role="visitor", text=f"Visitor {payload}").exists()
    assert watch_errors == []


def test_host_page_css_does_not_reach_the_launcher(page: Page, landing):
    page.goto(landing.url)

    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box is not None
    assert box["width"] == 56  # the page's `button { width: 10px !important }` stays outside


def test_widget_fills_a_phone_screen_and_closes(page: Page, landing):
    page.set_viewport_size({"width": 375, "height": 700})
    page.goto(landing.url)
    open_widget(page)

    box = page.locator("[data-leadchat] iframe").bounding_box()
    assert box is not None
    assert (box["width"], box["height"]) == (375, 700)

    page.frame_locator("[data-leadchat] iframe").get_by_role("button", name="Close chat").click()
    expect(page.locator("[data-leadchat] iframe")).to_be_hidden()
    expect(page.get_by_role("button", name="Open chat")).to_be_visible()


def test_launcher_works_from_the_keyboard(page: Page, landing):
    page.goto(landing.url)
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()

    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    frame = page.frame_locator("[data-leadchat] iframe")
    expect(frame.locator("#lc-log")).to_contain_text(GREETING)
    expect(page.get_by_role("button", name="Close chat").first).to_have_attribute(
        "aria-expanded", "true"
    )
    expect(frame.locator("#lc-log")).to_have_attribute("aria-live", "polite")


def test_widget_page_on_its_own_keeps_the_session_in_its_local_storage(page: Page, live_server):
    """The plain-iframe alternative (and any browser that lets the iframe keep storage)."""
    SiteFactory(public_key="plain", greeting=GREETING, allowed_origins=[])
    page.goto(f"{live_server.url}/widget/plain/")
    log = page.locator("#lc-log")
    expect(log).to_contain_text(GREETING)
    page.wait_for_load_state("networkidle")
    assert not ChatSession.objects.exists()  # only the first message starts a conversation
    # Shown at once, the page on its own counts as an opening (the overview's funnel).
    assert list(WidgetOpening.objects.values_list("count", flat=True)) == [1]

    say(page, "Hello there")
    expect(log).to_contain_text("May I have your name?")
    stored = page.evaluate("JSON.parse(localStorage.getItem('leadchat:plain'))")
    session = ChatSession.objects.get()
    assert stored["id"] == str(session.public_id)

    page.reload()
    expect(log).to_contain_text("Hello there")
    assert ChatSession.objects.count() == 1


def test_demo_landing_page_captures_a_lead_end_to_end(page: Page, live_server, watch_errors):
    from widget.demo import DEMO_SITE_KEY, seed_demo

    site, _ = seed_demo(sessions=1)
    site.allowed_origins = [live_server.url]  # the demo origins name port 8000
    site.save()
    page.goto(f"{live_server.url}/demo/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Analytics")

    frame = open_widget(page)
    expect(frame.locator("#lc-log")).to_contain_text(site.greeting)
    say(frame, "Hi, I'm Rosa Novak, rosa@example.org")
    expect(frame.locator("#lc-log")).to_contain_text("thank you Rosa")

    session = ChatSession.objects.filter(site__public_key=DEMO_SITE_KEY).latest("started_at")
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.lead_email == "rosa@example.org"
    assert watch_errors == []
