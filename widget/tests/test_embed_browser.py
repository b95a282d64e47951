"""The embed's finish in a real Chromium (issue 16): nothing broken on screen, a host page's CSS
kept out, and no session until the visitor writes.

Landing pages are LoopbackServers on their own ports: a real cross-origin embed (the script tag,
CORS, the frame's CSP and Referer all apply). Console messages are collected from the start.
"""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from playwright.sync_api import ConsoleMessage, Page, expect

from leadchat.testing import LoopbackServer, Reply
from sessions_app.models import ChatMessage, ChatSession, WidgetOpening
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GREETING = "Hi! I'm the Acme assistant. What brings you here?"


def html_page(body: str, head: str = "") -> Reply:
    html = f"<!doctype html><html><head><title>Acme</title>{head}</head><body>{body}</body></html>"
    return Reply(200, html, headers={"Content-Type": "text/html; charset=utf-8"})


def embed_line(app_url: str, key: str) -> str:
    return f'<h1>Acme</h1><script src="{app_url}/widget/embed.js" data-site="{key}" async></script>'


class Console:
    """Every console message and script error of the page, from the first load on."""

    def __init__(self, page: Page) -> None:
        self.messages: list[ConsoleMessage] = []
        self.errors: list[str] = []
        page.on("console", lambda message: self.messages.append(message))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def warnings(self) -> list[str]:
        return [m.text for m in self.messages if m.type == "warning"]


@pytest.fixture
def console(page: Page) -> Console:
    return Console(page)


@pytest.fixture
def landing(live_server):
    with LoopbackServer() as server:
        yield server


def wait_for_warning(page: Page, console: Console) -> None:
    for _ in range(100):
        if console.warnings():
            break
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)  # time for a second warning or a late launcher to show


# --- Nothing broken on screen --------------------------------------------------------------------


def unavailable_cases(landing_url: str) -> dict[str, tuple[str, str]]:
    """case -> (the key the page uses, the one warning its owner must see)."""
    return {
        "mistyped key": (
            "acme-sit",
            'leadchat: the site key "acme-sit" is unknown; copy the embed code again from the '
            "admin (Widget > Sites).",
        ),
        "origin not allowed": (
            "acme-elsewhere",
            f"leadchat: this page's origin {landing_url} is not in the allowed origins of site "
            '"Acme"; add it in the admin (Widget > Sites).',
        ),
        "site switched off": (
            "acme-off",
            'leadchat: the site "Acme" is switched off, so the chat is hidden; tick "Is active" '
            "for it in the admin (Widget > Sites) to show it.",
        ),
    }


@pytest.mark.parametrize("case", ["mistyped key", "origin not allowed", "site switched off"])
def test_unavailable_widget_shows_no_launcher_and_warns_the_owner_once(
    page: Page, live_server, landing, console, case
):
    SiteFactory(public_key="acme", name="Acme", allowed_origins=[landing.url])
    SiteFactory(public_key="acme-elsewhere", name="Acme", allowed_origins=["https://acme.example"])
    SiteFactory(public_key="acme-off", name="Acme", allowed_origins=[landing.url], is_active=False)
    key, warning = unavailable_cases(landing.url)[case]
    landing.responder = lambda request: html_page(embed_line(live_server.url, key))

    page.goto(landing.url)
    wait_for_warning(page, console)

    assert console.warnings() == [warning]
    assert page.locator("leadchat-widget, [data-leadchat]").count() == 0
    assert page.get_by_role("button", name="Open chat").count() == 0
    assert page.locator("iframe").count() == 0
    assert console.errors == []
    assert not ChatSession.objects.exists() and not WidgetOpening.objects.exists()


def test_available_widget_shows_the_launcher_without_a_warning(
    page: Page, live_server, landing, console
):
    SiteFactory(public_key="acme", name="Acme", allowed_origins=[landing.url])
    landing.responder = lambda request: html_page(embed_line(live_server.url, "acme"))

    page.goto(landing.url)

    expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert console.warnings() == [] and console.errors == []


def test_chat_server_answering_garbage_warns_once_and_shows_nothing(page: Page, landing, console):
    """The script served by a host whose API answers like a broken proxy (a 502 page)."""
    script = Path(str(finders.find("widget/embed.js"))).read_text()

    def responder(request):
        if request.path == "/embed.js":
            return Reply(200, script, headers={"Content-Type": "text/javascript"})
        if request.path.startswith("/api/"):
            return Reply(502, "<h1>Bad gateway</h1>", headers={"Content-Type": "text/html"})
        return html_page(f'<script src="{landing.url}/embed.js" data-site="acme"></script>')

    landing.responder = responder
    page.goto(landing.url)
    wait_for_warning(page, console)

    assert console.warnings() == [
        f"leadchat: no answer from {landing.url}; check the address in the embed code"
    ]
    assert page.locator("leadchat-widget").count() == 0


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("acme-sit", 'the site key "acme-sit" is unknown'),
        ("acme-off", 'the site "Acme" is switched off'),
        ("acme-elsewhere", "this page's origin {landing} is not in the allowed origins"),
    ],
)
def test_iframe_embed_of_an_unavailable_chat_shows_a_styled_friendly_page(
    page: Page, live_server, landing, key, why
):
    SiteFactory(public_key="acme-elsewhere", name="Acme", allowed_origins=["https://acme.example"])
    SiteFactory(public_key="acme-off", name="Acme", allowed_origins=[landing.url], is_active=False)
    iframe = f'<iframe src="{live_server.url}/widget/{key}/" width="360" height="400"></iframe>'
    landing.responder = lambda request: html_page(iframe)

    page.goto(landing.url)

    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="Chat unavailable")).to_be_visible()
    expect(frame.locator("main")).to_contain_text("not available right now")
    frame.get_by_text("For the site owner").click()
    expect(frame.locator(".lc-off-why")).to_contain_text(why.format(landing=landing.url))
    # Its own stylesheet applied (not the browser's bare defaults, not its broken-frame page).
    styles = frame.locator("body").evaluate(
        "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).fontFamily]"
    )
    assert styles[0] in {"rgb(246, 247, 249)", "rgb(17, 24, 39)"}  # light or dark scheme
    assert "system-ui" in styles[1]
    assert not page.frames[1].url.startswith("chrome-error://")


# --- Host CSS isolation -----------------------------------------------------------------------

HOSTILE_CSS = """<style>
div { border: 2px dashed red !important; padding: 30px !important; opacity: .3 !important; }
iframe { display: none !important; border: 5px solid red !important; width: 10px !important; }
button { background: red !important; width: 10px !important; border: 3px solid red !important; }
* { margin: 17px !important; font-size: 40px !important; visibility: visible !important; }
body > *, [data-leadchat], leadchat-widget { display: block !important;
  position: relative !important; border: 4px dotted blue !important; width: 300px !important;
  height: 50px !important; }
</style>"""


def test_hostile_host_css_cannot_style_the_widget(page: Page, live_server, landing, console):
    SiteFactory(
        public_key="acme", greeting=GREETING, theme_color="#6f42c1", allowed_origins=[landing.url]
    )
    landing.responder = lambda request: html_page(
        embed_line(live_server.url, "acme"), head=HOSTILE_CSS
    )
    page.goto(landing.url)
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()

    style = """(el, names) => { const s = getComputedStyle(el);
        return Object.fromEntries(names.map(n => [n, s.getPropertyValue(n)])); }"""
    host = page.locator("[data-leadchat]").evaluate(
        style,
        [
            "border-top-style",
            "border-top-width",
            "padding-top",
            "margin-top",
            "opacity",
            "width",
            "height",
            "position",
            "display",
        ],
    )
    # Nothing of the page's rules on the host element: no stub box, no dashed border.
    assert host == {
        "border-top-style": "none",
        "border-top-width": "0px",
        "padding-top": "0px",
        "margin-top": "0px",
        "opacity": "1",
        "width": "auto",
        "height": "auto",
        "position": "static",
        "display": "inline",
    }
    button = launcher.evaluate(
        style,
        ["width", "height", "background-color", "border-top-width", "margin-top", "font-size"],
    )
    assert button["width"] == button["height"] == "56px"
    assert button["background-color"] == "rgb(111, 66, 193)"  # the site's colour, not red
    assert button["border-top-width"] == "0px" and button["margin-top"] == "0px"
    box = launcher.bounding_box()
    assert box is not None and box["width"] == 56

    launcher.click()
    frame = page.frame_locator("[data-leadchat] iframe")
    expect(frame.locator("#lc-log")).to_contain_text(GREETING)
    iframe = page.locator("[data-leadchat] iframe").evaluate(
        style, ["display", "border-top-width", "width", "height", "margin-top"]
    )
    assert iframe["display"] == "block" and iframe["border-top-width"] == "0px"
    assert iframe["width"] == "370px" and iframe["margin-top"] == "0px"
    panel = page.locator("[data-leadchat] .p").evaluate(
        style, ["border-top-style", "padding-top", "opacity"]
    )
    assert panel == {"border-top-style": "none", "padding-top": "0px", "opacity": "1"}
    assert console.errors == []


# --- No empty sessions ------------------------------------------------------------------------


def test_opening_and_closing_the_chat_creates_no_session_until_the_first_message(
    page: Page, live_server, landing, console
):
    SiteFactory(
        public_key="acme", greeting=GREETING, theme_color="#6f42c1", allowed_origins=[landing.url]
    )
    landing.responder = lambda request: html_page(embed_line(live_server.url, "acme"))
    page.goto(f"{landing.url}/pricing")
    launcher = page.get_by_role("button", name="Open chat")

    with page.expect_response(lambda r: r.url.endswith("/api/widget/openings/")) as opened:
        launcher.click()
    assert opened.value.status == 204
    frame = page.frame_locator("[data-leadchat] iframe")
    log = frame.locator("#lc-log")
    expect(log).to_contain_text(GREETING)
    # The greeting's quick replies are there before any session exists.
    expect(frame.get_by_role("button", name="I'd like a quote")).to_be_visible()
    page.get_by_role("button", name="Close chat").first.click()
    expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    page.get_by_role("button", name="Open chat").click()  # again: counted once per page
    expect(log).to_contain_text(GREETING)
    page.wait_for_timeout(500)

    assert not ChatSession.objects.exists()
    assert list(WidgetOpening.objects.values_list("count", flat=True)) == [1]

    frame.get_by_role("button", name="I'd like a quote").click()
    expect(log).to_contain_text("May I have your name?")

    session = ChatSession.objects.get()
    assert session.page_url == f"{landing.url}/pricing"
    texts = list(ChatMessage.objects.order_by("id").values_list("role", "text"))
    assert texts[:2] == [("ai", GREETING), ("visitor", "I'd like a quote")]
    # The greeting shows once: the stored one is not drawn again beside the local one.
    expect(log.get_by_text(GREETING)).to_have_count(1)
    assert list(WidgetOpening.objects.values_list("count", flat=True)) == [1]
    assert console.errors == []


def test_reload_after_the_first_message_resumes_without_counting_an_opening(
    page: Page, live_server, landing
):
    SiteFactory(public_key="acme", greeting=GREETING, allowed_origins=[landing.url])
    landing.responder = lambda request: html_page(embed_line(live_server.url, "acme"))
    page.goto(landing.url)
    page.get_by_role("button", name="Open chat").click()
    frame = page.frame_locator("[data-leadchat] iframe")
    frame.locator("#lc-input").fill("Do you have an API?")
    frame.locator("#lc-input").press("Enter")
    expect(frame.locator("#lc-log")).to_contain_text("May I have your name?")

    page.reload()
    page.get_by_role("button", name="Open chat").click()

    expect(frame.locator("#lc-log")).to_contain_text("Do you have an API?")
    page.wait_for_timeout(300)
    assert ChatSession.objects.count() == 1
    # The reopening had a conversation to show: not a new opening of the funnel.
    assert list(WidgetOpening.objects.values_list("count", flat=True)) == [1]
