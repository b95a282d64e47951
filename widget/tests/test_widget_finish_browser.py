"""The widget's finish in real Chromium (issue 16): the site's language and public title, message
times in the visitor's clock, dark mode (the system's or forced), the greeting bubble.

Each landing page is served by a LoopbackServer on its own origin, as in test_browser.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from leadchat.testing import LoopbackServer
from sessions_app.models import ChatMessage, ChatSession
from widget.tests.factories import SiteFactory
from widget.tests.test_browser import landing_page, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DARK_LOG = "rgb(11, 18, 32)"  # --lc-log in dark mode (widget.css)
LIGHT_LOG = "rgb(246, 247, 249)"

_opened: list[BrowserContext] = []


@pytest.fixture(autouse=True)
def _close_contexts(transactional_db):
    # After the database fixture, so closed before its flush (as test_takeover_browser).
    yield
    while _opened:
        _opened.pop().close()


@pytest.fixture
def make_landing(live_server):
    """make_landing(**site fields) -> the URL of a landing page embedding that new site."""
    servers: list[LoopbackServer] = []

    def make(key: str = "finish-site", **fields) -> str:
        server = LoopbackServer().__enter__()
        servers.append(server)
        server.responder = lambda request: landing_page(live_server.url, key)
        SiteFactory(public_key=key, allowed_origins=[server.url], **fields)
        return server.url

    yield make
    for server in servers:
        server.__exit__(None, None, None)


def open_chat(page: Page):
    page.locator("[data-leadchat] button.l").click()
    frame = page.frame_locator("[data-leadchat] iframe")
    expect(frame.locator("#lc-input")).to_be_visible()
    return frame


def new_page(browser: Browser, **options) -> Page:
    context = browser.new_context(**options)
    _opened.append(context)
    return context.new_page()


def test_spanish_site_shows_spanish_texts_and_its_agent_answers_in_spanish(
    browser: Browser, make_landing
):
    url = make_landing(
        name="LP primavera (interno)", public_title="Acme Solar", language="es", greeting=""
    )
    # An English browser: the site's language decides, not the visitor's.
    page = new_page(browser, locale="en-US")
    page.goto(url)
    frame = open_chat(page)

    expect(frame.locator("h1")).to_have_text("Acme Solar")
    expect(frame.locator(".lc-head p")).to_have_text("Solemos responder en segundos")
    expect(frame.locator("#lc-send")).to_have_text("Enviar")
    expect(frame.locator("#lc-input")).to_have_attribute("placeholder", "Escribe tu mensaje…")
    expect(frame.locator("html")).to_have_attribute("lang", "es")
    assert "interno" not in frame.locator("body").inner_text()
    log = frame.locator("#lc-log")
    expect(log).to_contain_text("¡Hola! 👋 ¿En qué podemos ayudarte hoy?")

    frame.get_by_role("button", name="Quiero un presupuesto").click()
    expect(log).to_contain_text("¡Encantados de ayudarte con eso! ¿Cómo te llamas?")
    say(frame, "Ana")
    expect(log).to_contain_text("¡Gracias, Ana! ¿Cuál es el mejor correo para contactarte?")
    expect(frame.locator("#lc-input")).to_have_attribute("placeholder", "nombre@ejemplo.com")
    frame.locator("#lc-input").fill("ana@ejemplo")
    expect(frame.locator("#lc-hint")).to_have_text(
        "Ese correo parece incompleto: necesita un nombre, una @ y un dominio como ejemplo.com."
    )
    say(frame, "No, gracias")
    expect(log).to_contain_text("Eso sí, sin un correo no podemos responderte")
    say(frame, "Quiero hablar con una persona")
    expect(log).to_contain_text("He pedido a alguien del equipo que se una a este chat.")


def test_the_launcher_speaks_the_sites_language(browser: Browser, make_landing):
    url = make_landing(language="de")
    page = new_page(browser, locale="en-US")
    page.goto(url)
    launcher = page.get_by_role("button", name="Chat öffnen")
    expect(launcher).to_be_visible()
    launcher.click()
    expect(page.get_by_role("button", name="Schließen").first).to_be_visible()
    expect(page.locator("[data-leadchat] iframe")).to_have_attribute("title", "Chat")


def test_message_times_show_in_the_visitors_own_clock(browser: Browser, make_landing):
    url = make_landing(public_title="Acme", language="de")
    page = new_page(browser, timezone_id="Asia/Tokyo")
    page.goto(url)
    frame = open_chat(page)
    say(frame, "Ich brauche ein Angebot")
    times = frame.locator("#lc-log .lc-time")
    expect(times).to_have_count(3)  # the greeting, the visitor's message, the agent's answer

    session = ChatSession.objects.get()
    stored = list(ChatMessage.objects.filter(session=session).order_by("id"))
    for shown, message in zip(times.all(), stored, strict=True):
        local = message.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
        hhmm = shown.inner_text()
        hour, _, minute = hhmm.partition(":")
        assert (int(hour), int(minute)) == (local.hour, local.minute), hhmm  # Tokyo's, not UTC's
        assert shown.get_attribute("aria-label") == f"Gesendet um {hhmm}"
        when = datetime.fromisoformat(shown.get_attribute("datetime").replace("Z", "+00:00"))
        assert abs((when - message.created_at).total_seconds()) < 0.001
    # Small, beside the text it dates.
    size = times.first.evaluate("t => parseFloat(getComputedStyle(t).fontSize)")
    assert size < 12


@pytest.mark.parametrize(
    ("theme", "system", "looks"),
    [
        ("auto", "dark", DARK_LOG),
        ("auto", "light", LIGHT_LOG),
        ("dark", "light", DARK_LOG),
        ("light", "dark", LIGHT_LOG),
    ],
)
def test_dark_mode_follows_the_system_unless_the_site_forces_a_theme(
    browser: Browser, make_landing, theme, system, looks
):
    url = make_landing(public_title="Acme", theme=theme)
    page = new_page(browser, color_scheme=system)
    page.goto(url)
    frame = open_chat(page)
    # Polled until it holds (a page under load may not have applied the stylesheet yet at the
    # first look; a wrong theme never turns into the right one).
    expect(frame.locator("#lc-log")).to_have_css("background-color", looks)
    # Text stays readable on it: the greeting bubble's text is light on dark, dark on light.
    expect(frame.locator(".lc-agent").first).to_have_css(
        "color", "rgb(229, 231, 235)" if looks == DARK_LOG else "rgb(31, 41, 55)"
    )


BUBBLE_AFTER_S = 3


def test_greeting_bubble_appears_after_the_delay_and_not_again_once_dismissed(
    browser: Browser, make_landing
):
    url = make_landing(
        public_title="Acme",
        language="fr",
        greeting="Une question sur nos panneaux ?",
        greeting_bubble_seconds=BUBBLE_AFTER_S,
    )
    page = new_page(browser)
    page.goto(url)
    bubble = page.locator("[data-leadchat] .g")
    expect(bubble).to_be_hidden()
    page.wait_for_timeout(1000)
    expect(bubble).to_be_hidden()  # not before its delay
    expect(bubble).to_be_visible(timeout=BUBBLE_AFTER_S * 1000 + 5000)
    expect(bubble).to_contain_text("Une question sur nos panneaux ?")

    bubble.get_by_role("button", name="Fermer").click()
    expect(bubble).to_be_hidden()
    assert not ChatSession.objects.exists()  # a dismissed bubble starts nothing

    # Another page of the site in the same browser session: no bubble any more.
    page.reload()
    expect(page.locator("[data-leadchat] iframe")).to_be_attached(timeout=10_000)
    page.wait_for_timeout(BUBBLE_AFTER_S * 1000 + 1000)
    expect(bubble).to_be_hidden()


def test_greeting_bubble_opens_the_chat_and_stays_away_once_the_chat_was_opened(
    browser: Browser, make_landing
):
    url = make_landing(public_title="Acme", greeting="Need a hand?", greeting_bubble_seconds=1)
    page = new_page(browser)
    page.goto(url)
    bubble = page.locator("[data-leadchat] .g")
    expect(bubble).to_be_visible(timeout=8000)
    bubble.get_by_role("button", name="Need a hand?").click()
    frame = page.frame_locator("[data-leadchat] iframe")
    expect(frame.locator("#lc-input")).to_be_visible()
    expect(bubble).to_be_hidden()

    page.reload()
    expect(page.locator("[data-leadchat] iframe")).to_be_attached(timeout=10_000)
    page.wait_for_timeout(2000)
    expect(bubble).to_be_hidden()


def test_no_greeting_bubble_by_default(browser: Browser, make_landing):
    url = make_landing(public_title="Acme", greeting="Need a hand?")
    page = new_page(browser)
    page.goto(url)
    expect(page.locator("[data-leadchat] iframe")).to_be_attached(timeout=10_000)
    page.wait_for_timeout(2000)
    expect(page.locator("[data-leadchat] .g")).to_be_hidden()
