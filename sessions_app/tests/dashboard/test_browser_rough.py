"""Issue 16, "The dashboard and the console", in a real Chromium: the filter bar at 1280 and
1440 px, bulk-archiving a full page, the Undo toast's time, the overview's range in the URL and
unknown filter values from the address."""

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from sessions_app.models import ArchiveStatus, ChatSession, CompletionStatus
from sessions_app.tests.dashboard.test_browser import Problems, sign_in
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def problems(page: Page) -> Problems:
    return Problems(page)


@pytest.fixture
def agent(make_user):
    return make_user("agent", username="agnes")


# For each select of the filter bar: its inner width against what its longest option needs (the
# text in the select's own font, plus its padding, which holds the arrow).
MEASURE_SELECTS = """() => {
  const canvas = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("#filters select")].map((select) => {
    const style = getComputedStyle(select);
    canvas.font = style.font;
    const longest = Math.max(...[...select.options].map((o) => canvas.measureText(o.text).width));
    const needed = longest + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
    return { name: select.name, width: select.clientWidth, needed: Math.ceil(needed) };
  });
}"""


@pytest.mark.parametrize("width", [1280, 1440])
def test_filter_bar_selects_never_cut_their_longest_option(
    page, live_server, agent, problems, width
):
    SiteFactory(name="Acme Insights spring campaign")
    SiteFactory(name="Docs")
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator("#rows[data-loaded]")).to_have_count(1)
    measured = page.evaluate(MEASURE_SELECTS)
    assert {m["name"] for m in measured} >= {"completion", "qa_status", "site", "ordering"}
    cut = [m for m in measured if m["width"] < m["needed"]]
    assert cut == [], measured
    # And the bar does not push the page sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert problems.items == []


def test_bulk_archiving_a_full_page_loads_the_next_one(page, live_server, agent, problems):
    ChatSessionFactory.create_batch(30)
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator("tr[data-id]")).to_have_count(25)
    expect(page.locator("#count")).to_have_text("30")
    page.locator("#select-all").check()
    page.get_by_role("button", name="Archive selected").click()
    expect(page.locator(".toast", has_text="25 sessions archived")).to_be_visible()
    # The five sessions left are listed, under the right count; no "No sessions match".
    expect(page.locator("tr[data-id]")).to_have_count(5)
    expect(page.locator("#count")).to_have_text("5")
    expect(page.locator("#empty-filtered")).to_be_hidden()
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 · 5 sessions")
    assert ChatSession.objects.filter(archive_status=ArchiveStatus.ARCHIVED).count() == 25
    assert problems.items == []


def test_undo_toast_stays_20_seconds_and_waits_while_hovered(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="Undo Me")
    page.clock.install()
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    row = page.locator(f'tr[data-id="{session.public_id}"]')
    row.get_by_role("button", name=re.compile("Archive session")).click()
    toast = page.locator(".toast", has_text="archived")
    expect(toast).to_be_visible()
    page.mouse.move(5, 5)
    page.clock.run_for(15_000)
    expect(toast).to_be_visible()  # the 7 s of before would have hidden it
    toast.hover()
    page.clock.run_for(60_000)
    expect(toast).to_be_visible()  # never while the pointer is on it
    page.mouse.move(5, 5)
    page.clock.run_for(19_000)
    expect(toast).to_be_visible()
    page.clock.run_for(2_000)
    page.clock.run_for(1_000)  # the fade-out
    expect(toast).to_have_count(0)
    assert problems.items == []


def refused_only(problems: Problems) -> list[str]:
    """The problems other than the API's 400s the test provokes (and the browser's log line)."""
    return [
        p
        for p in problems.items
        if not p.startswith("400 ") and "status of 400 (Bad Request)" not in p
    ]


def at_noon(day: int) -> datetime:
    return datetime(2026, 3, day, 12, 0, tzinfo=UTC)


def test_overview_custom_range_survives_a_reload_and_a_shared_link(
    page, live_server, agent, problems, context
):
    site = SiteFactory()
    for day in (3, 4, 5):
        ChatSessionFactory(site=site, started_at=at_noon(day))
    ChatSessionFactory(
        site=site, started_at=at_noon(20), completion_status=CompletionStatus.COMPLETE
    )
    page.emulate_media(color_scheme="light")
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1)
    page.get_by_label("From", exact=True).fill("2026-03-01")
    page.get_by_label("To", exact=True).fill("2026-03-10")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"\?date_from=2026-03-01&date_to=2026-03-10$"))
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("3")

    page.reload()
    expect(page.get_by_label("From", exact=True)).to_have_value("2026-03-01")
    expect(page.get_by_label("To", exact=True)).to_have_value("2026-03-10")
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("3")
    expect(page.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "false")

    shared = context.new_page()  # the same link in another tab
    shared.goto(page.url)
    expect(shared.locator('[data-kpi="sessions"]')).to_have_text("3")
    shared.close()

    page.get_by_role("button", name="7 days").click()
    expect(page).to_have_url(re.compile(r"/dashboard/\?days=7$"))
    assert problems.items == []


def test_a_reversed_range_says_so_and_leaves_no_old_figures(page, live_server, agent, problems):
    ChatSessionFactory(started_at=at_noon(4))
    sign_in(page, live_server, agent, "/dashboard/?date_from=2026-03-01&date_to=2026-03-10")
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("1")
    page.get_by_label("From", exact=True).fill("2026-03-10")
    page.get_by_label("To", exact=True).fill("2026-03-01")
    page.get_by_role("button", name="Apply").click()
    alert = page.locator("#stats-error")
    expect(alert).to_have_text(
        "The start date (2026-03-10) is after the end date (2026-03-01): "
        "pick a start on or before the end."
    )
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("–")
    expect(page.locator("#top-pages tr")).to_have_count(0)
    assert page.evaluate("Chart.getChart('chart-per-day') === undefined")
    # A value from a link that no control holds goes to the API, whose message shows the same way.
    page.goto(live_server.url + "/dashboard/?site=x")
    expect(alert).to_have_text("Site: A valid integer is required.")
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("–")
    assert refused_only(problems) == []


def test_an_unknown_filter_value_in_the_address_is_named_on_the_page(
    page, live_server, agent, problems
):
    ChatSessionFactory(lead_name="Listed Anyway?")
    sign_in(page, live_server, agent, "/dashboard/sessions/?qa_status=bogus")
    expect(page.locator("#list-error")).to_have_text(
        re.compile(r"^qa_status: Unknown value 'bogus'; choose from: unchecked")
    )
    expect(page.locator("tr[data-id]")).to_have_count(0)  # not "everything"
    # Choosing a QA status replaces the bad value and lists again.
    page.get_by_label("QA").select_option("unchecked")
    expect(page.locator("tr[data-id]")).to_have_count(1)
    expect(page.locator("#list-error")).to_be_hidden()
    assert refused_only(problems) == []
    assert any("qa_status=bogus" in p for p in problems.items)
