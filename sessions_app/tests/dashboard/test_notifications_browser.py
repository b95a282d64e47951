"""Dashboard notifications in a real Chromium: the unread count in the tab title, the browser
asked for notification permission only from the button, waiting visitors first in the list,
the overview's KPIs following the changes feed.

`Notification.requestPermission` is wrapped (not replaced) to count the prompts: headless
Chromium cannot show a permission prompt to anyone, so whether it was asked is what can be seen.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from sessions_app import services
from sessions_app.tests.dashboard.test_browser import LIVE_TIMEOUT_MS, Problems, sign_in
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COUNT_PROMPTS = """
window.__prompts = 0;
if ("Notification" in window) {
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = function () { window.__prompts += 1; return ask(); };
}
"""


@pytest.fixture
def agent(make_user):
    return make_user("agent", username="nora")


@pytest.fixture
def problems(page: Page) -> Problems:
    return Problems(page)


def test_tab_title_counts_new_events_and_permission_is_asked_only_from_the_button(
    page, live_server, agent, problems
):
    site = SiteFactory(name="Acme")
    page.add_init_script(COUNT_PROMPTS)
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1)
    expect(page).to_have_title("Overview · leadchat")
    page.wait_for_timeout(1500)  # at least one poll of the feed has run
    assert page.evaluate("window.__prompts") == 0  # never on load

    waiting = ChatSessionFactory(site=site, lead_name="Wanda Waits")
    services.human_request(session=waiting)
    expect(page).to_have_title(re.compile(r"^\(1\) Overview · leadchat$"), timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#notify-unread")).to_have_text("1")
    # The KPIs follow the feed without a reload.
    expect(page.locator('[data-kpi="needs_human"]')).to_have_text("1", timeout=LIVE_TIMEOUT_MS)

    lead = ChatSessionFactory(site=site)
    services.lead_capture(session=lead, name="Leo Lead", email="leo@example.com")
    expect(page).to_have_title(re.compile(r"^\(2\) "), timeout=LIVE_TIMEOUT_MS)
    expect(page.locator('[data-kpi="leads"]')).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    page.wait_for_timeout(1500)
    expect(page).to_have_title(re.compile(r"^\(2\) "))  # each event counted once
    assert page.evaluate("window.__prompts") == 0

    page.locator("#notify-permission").click()
    page.wait_for_function("window.__prompts === 1")
    # Clicking the bell also marks everything read.
    expect(page).to_have_title("Overview · leadchat")
    assert problems.items == []


def test_the_count_survives_moving_to_another_page(page, live_server, agent, problems):
    site = SiteFactory()
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator("#rows[data-loaded]")).to_have_count(1)
    page.wait_for_timeout(1000)
    services.human_request(session=ChatSessionFactory(site=site))
    expect(page).to_have_title(re.compile(r"^\(1\) Sessions"), timeout=LIVE_TIMEOUT_MS)
    page.goto(live_server.url + "/dashboard/errors/")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    assert problems.items == []


def test_a_visitor_who_starts_waiting_moves_to_the_top_of_the_list(
    page, live_server, agent, problems
):
    site = SiteFactory()
    older = ChatSessionFactory(site=site, lead_name="Olga Older")
    ChatSessionFactory(site=site, lead_name="Nina Newer")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    first_row = page.locator("#rows tr[data-id]").first
    expect(first_row).to_contain_text("Nina Newer")

    services.human_request(session=older)
    expect(first_row).to_contain_text("Olga Older", timeout=LIVE_TIMEOUT_MS)
    expect(first_row).to_contain_text("Needs a human")
    expect(first_row).to_have_class(re.compile(r"\brow-needs-human\b"))

    page.locator("#f-needs_human").select_option("true")
    expect(page.locator("#rows tr[data-id]")).to_have_count(1)
    assert "needs_human=true" in page.url
    assert problems.items == []


def test_an_agent_dismisses_a_request_on_the_session_page(page, live_server, agent, problems):
    session = ChatSessionFactory(site=SiteFactory(), lead_name="Dora Done")
    services.human_request(session=session)
    sign_in(page, live_server, agent, f"/dashboard/sessions/{session.public_id}/")
    expect(page.locator("[data-needs-human]")).to_contain_text("Needs a human")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("[data-needs-human]")).to_have_count(0)
    expect(page.locator('[data-panel="history"]')).to_contain_text("Request for a human")
    session.refresh_from_db()
    assert not session.needs_human
    assert problems.items == []


COUNT_BEEPS = """
window.__beeps = 0;
const make = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1;
  return make.call(this);
};
"""


def test_the_sound_is_off_until_switched_on_then_beeps_on_an_event(
    page, live_server, agent, problems
):
    site = SiteFactory()
    page.add_init_script(COUNT_BEEPS)
    sign_in(page, live_server, agent)
    sound = page.locator("#notify-sound")
    expect(sound).to_have_attribute("aria-pressed", "false")
    page.wait_for_timeout(1000)
    services.human_request(session=ChatSessionFactory(site=site))
    expect(page).to_have_title(re.compile(r"^\(1\) "), timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__beeps") == 0  # off by default

    sound.click()  # on: it beeps once so the user hears what they chose
    expect(sound).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__beeps") == 1
    services.lead_capture(session=ChatSessionFactory(site=site), name="Al", email="al@example.com")
    expect(page).to_have_title(re.compile(r"^\(2\) "), timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__beeps") == 2
    assert page.evaluate("localStorage.getItem('leadchat:notify-sound')") == "on"
    assert problems.items == []


def test_a_visitor_writing_in_a_session_the_agent_holds_is_an_event_only_for_them(
    page, live_server, agent, make_user, problems
):
    from sessions_app.models import MessageRole
    from sessions_app.takeover import session_takeover

    site = SiteFactory(name="Acme")
    mine = ChatSessionFactory(site=site)
    theirs = ChatSessionFactory(site=site)
    session_takeover(session=mine, by=agent)
    session_takeover(session=theirs, by=make_user("agent", username="otto"))
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator("#rows[data-loaded]")).to_have_count(1)
    page.wait_for_timeout(1500)  # the feed is being watched from now on
    # The visitor of someone else's session writes: nothing for this agent.
    services.message_add(session=theirs, role=MessageRole.VISITOR, text="Hello?")
    page.wait_for_timeout(2500)
    expect(page).to_have_title("Sessions · leadchat")
    # The visitor of this agent's session writes: one unread event.
    services.message_add(session=mine, role=MessageRole.VISITOR, text="Are you there?")
    expect(page).to_have_title(re.compile(r"^\(1\) Sessions"), timeout=LIVE_TIMEOUT_MS)
    assert problems.items == []
