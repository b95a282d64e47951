"""The widget under a database outage, in a real Chromium: it keeps the visitor's text, says so,
and sends it again after Retry-After.

The server side of the outage (a real PostgreSQL stop answering JSON 503 + Retry-After) is proven
in leadchat/tests/test_database_outage.py; here the browser sees the same answer through route
interception, for the first two sends, then the real server answers.
"""

import json

import pytest
from playwright.sync_api import Page, Route, expect

from leadchat.testing import LoopbackServer
from sessions_app.models import ChatMessage, MessageRole
from widget.tests.factories import SiteFactory
from widget.tests.test_browser import GREETING, landing_page, open_widget, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTAGE_BODY = json.dumps(
    {
        "error": "The service is briefly unavailable. Please try again in a few seconds.",
        "code": "database_unavailable",
    }
)

# Generous: CI runs two test processes on two cores; a loaded machine takes more than
# Playwright's default 5 s to render a frame, and the waits below are about order, not speed.
UI_TIMEOUT_MS = 15_000


@pytest.fixture
def landing_page_server(live_server):
    with LoopbackServer() as server:
        server.responder = lambda request: landing_page(live_server.url, "retry-site")
        SiteFactory(public_key="retry-site", greeting=GREETING, allowed_origins=[server.url])
        yield server


def test_widget_keeps_the_text_and_retries_after_a_503(page: Page, landing_page_server):
    refused: list[str] = []

    def outage_then_recovery(route: Route) -> None:
        if route.request.method == "POST" and len(refused) < 2:
            refused.append(route.request.post_data or "")
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Access-Control-Allow-Origin": "*"},
                content_type="application/json",
                body=OUTAGE_BODY,
            )
        else:
            route.continue_()

    page.context.route("**/api/widget/sessions/*/messages/", outage_then_recovery)
    page.goto(f"{landing_page_server.url}/")
    frame = open_widget(page)
    log = frame.locator("#lc-log")
    expect(log).to_contain_text(GREETING, timeout=UI_TIMEOUT_MS)

    say(frame, "Do you ship to Portugal?")

    # The text stays on screen, marked as waiting, with a short message.
    waiting = frame.locator(".lc-visitor.lc-waiting")
    expect(waiting).to_have_text("Do you ship to Portugal?", timeout=UI_TIMEOUT_MS)
    expect(frame.locator(".lc-notice")).to_contain_text(
        "Your message is kept; trying again", timeout=UI_TIMEOUT_MS
    )
    # Sent again by itself, the reply arrives; the notice and the waiting mark go away.
    expect(frame.locator(".lc-agent").last).not_to_have_text(GREETING, timeout=UI_TIMEOUT_MS)
    expect(frame.locator(".lc-notice")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(frame.locator(".lc-visitor")).to_have_text(
        ["Do you ship to Portugal?"], timeout=UI_TIMEOUT_MS
    )
    expect(waiting).to_have_count(0, timeout=UI_TIMEOUT_MS)

    assert [json.loads(body)["text"] for body in refused] == ["Do you ship to Portugal?"] * 2
    stored = ChatMessage.objects.filter(role=MessageRole.VISITOR).values_list("text", flat=True)
    assert list(stored) == ["Do you ship to Portugal?"]  # stored once, by the third try


def test_a_message_sent_while_the_conversation_is_still_starting_stays_on_screen(
    page: Page, landing_page_server
):
    # Under load the request that starts the conversation can still be in flight when the
    # visitor sends: the transcript it brings back must not wipe the visitor's line (it did,
    # and the visitor saw an answer to a question no longer on screen).
    held: list[Route] = []

    def hold_the_start(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.context.route("**/api/widget/sessions/", hold_the_start)
    page.goto(f"{landing_page_server.url}/")
    frame = open_widget(page)
    expect(frame.locator("#lc-log")).to_contain_text(GREETING, timeout=UI_TIMEOUT_MS)
    say(frame, "Do you ship to Portugal?")
    expect(frame.locator(".lc-visitor")).to_have_text(["Do you ship to Portugal?"])
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].continue_()

    answer = frame.locator(".lc-agent:not(.lc-typing)").last
    expect(answer).not_to_have_text(GREETING, timeout=UI_TIMEOUT_MS)
    expect(frame.locator("#lc-log .lc-msg")).to_have_count(3)
    expect(frame.locator("#lc-log .lc-msg").nth(1)).to_have_text("Do you ship to Portugal?")
    assert ChatMessage.objects.filter(role=MessageRole.VISITOR).count() == 1
