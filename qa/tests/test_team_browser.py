"""A QA team in real browsers (Chromium): two reviewers on one queue, the keys, the claim's
heartbeat, the sticky QA panel and the list at 1280-1440 px."""

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from accounts.tests.factories import UserFactory
from qa.models import QAHistory, ReviewClaim
from qa.tests.test_browser import conversation, sign_in, watch_for_breakage
from sessions_app.models import ChatSession, MessageRole, QAStatus
from sessions_app.services import message_add
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHANGE_URL = re.compile(r"/admin/sessions_app/chatsession/(\d+)/change/")


def opened_id(page: Page) -> int:
    match = CHANGE_URL.search(page.url)
    assert match, page.url
    return int(match.group(1))


@pytest.fixture
def contexts(browser: Browser, transactional_db):
    """Browser contexts of this test, closed when it ends (an open console page would go on
    renewing its claim against the live server through the next tests), and before the
    database is flushed (torn down before the database fixture it depends on)."""
    opened: list[BrowserContext] = []

    def new(**options) -> BrowserContext:
        context = browser.new_context(**options)
        opened.append(context)
        return context

    yield new
    for context in opened:
        context.close()


def test_two_reviewers_on_one_queue_never_decide_the_same_session(contexts, live_server):
    site = SiteFactory(name="Pricing page")
    sessions = [
        conversation(site, name=f"Lead {i} Person", question=f"Question {i}?", minutes_ago=i)
        for i in range(6)
    ]
    UserFactory.create(username="rhea-qa", role="qa")
    UserFactory.create(username="sam-qa", role="qa")
    pages: dict[str, Page] = {}
    problems: list[str] = []
    for name in ("rhea-qa", "sam-qa"):
        page = contexts(viewport={"width": 1366, "height": 900}).new_page()
        problems += watch_for_breakage(page)
        sign_in(page, live_server.url, name)
        page.goto(f"{live_server.url}/admin/sessions_app/chatsession/")
        pages[name] = page
    rhea, sam = pages["rhea-qa"], pages["sam-qa"]

    # Both open the top of the queue: the first claims it, the second sees who has it.
    rhea.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    expect(rhea.locator("#qa-claim")).to_contain_text("You are reviewing this session")
    sam.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    expect(sam.locator("#qa-claim")).to_contain_text("Being reviewed by rhea-qa (until ")
    expect(sam.get_by_role("button", name="Mark passed & review next ›")).to_have_count(0)
    assert opened_id(sam) == opened_id(rhea)
    sam.get_by_role("link", name="Next ›").click()
    expect(sam.locator("#qa-claim")).to_contain_text("You are reviewing this session")
    assert opened_id(sam) != opened_id(rhea)

    # Then both pass and go on, in turns, until their queue is clear.
    decided: dict[str, list[int]] = {"rhea-qa": [], "sam-qa": []}
    done: set[str] = set()
    for _ in range(20):
        for name, page in pages.items():
            if name in done:
                continue
            decided[name].append(opened_id(page))
            page.get_by_role("button", name="Mark passed & review next ›").click()
            expect(page.locator(".messagelist")).to_contain_text("Session marked passed.")
            if "Queue clear" in page.locator(".messagelist").inner_text():
                done.add(name)
        if done == set(pages):
            break
    assert done == {"rhea-qa", "sam-qa"}

    assert not set(decided["rhea-qa"]) & set(decided["sam-qa"])
    assert sorted(decided["rhea-qa"] + decided["sam-qa"]) == sorted(s.pk for s in sessions)
    assert decided["rhea-qa"] and decided["sam-qa"]  # both did a share
    assert set(ChatSession.objects.values_list("qa_status", flat=True)) == {QAStatus.PASSED}
    moves = QAHistory.objects.filter(kind=QAHistory.Kind.MOVE)
    assert moves.count() == len(sessions)  # one decision per session, nothing replaced
    for session in sessions:
        [move] = moves.filter(session=session)
        assert move.by is not None and session.pk in decided[move.by.username]
    assert problems == []


def test_keyboard_shortcuts_review_the_queue(page: Page, live_server):
    from qa.scorecards.models import FailureCategory

    FailureCategory.objects.get_or_create(name="Wrong information")
    site = SiteFactory(name="Pricing page")
    newest = conversation(site, name="Nora Newest", question="Do you ship?", minutes_ago=1)
    middle = conversation(site, name="Mia Middle", question="Any trial?", minutes_ago=2)
    oldest = conversation(site, name="Olga Oldest", question="Price?", minutes_ago=3)
    UserFactory.create(username="rhea-qa", role="qa")
    problems = watch_for_breakage(page)
    sign_in(page, live_server.url, "rhea-qa")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/{newest.pk}/change/")

    hint = page.locator("#qa-keys")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("p pass & next")
    expect(hint).to_contain_text("f flag issue")
    expect(hint).to_contain_text("j next")

    # j / k: next and previous in the list, nothing decided.
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/chatsession/{middle.pk}/change/"))
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(rf"/chatsession/{newest.pk}/change/"))

    # n focuses the note; typing there is typing (a "j" in the note goes nowhere).
    page.keyboard.press("n")
    note = page.locator("textarea[name=qa_notes]")
    expect(note).to_be_focused()
    page.keyboard.type("Says we ship to Mars: just joking")
    expect(page).to_have_url(re.compile(rf"/chatsession/{newest.pk}/change/"))
    expect(note).to_have_value("Says we ship to Mars: just joking")
    # An issue needs a failure category (qa.scorecards): tick one, then Esc leaves the field and
    # f flags the issue with that note.
    page.get_by_label("Wrong information").check()
    page.keyboard.press("Escape")
    expect(note).not_to_be_focused()
    page.keyboard.press("f")
    expect(page.locator(".messagelist")).to_contain_text("Session flagged as an issue.")
    newest.refresh_from_db()
    assert newest.qa_status == QAStatus.ISSUE
    assert newest.qa_notes == "Says we ship to Mars: just joking"

    # p passes and goes on to the next one of the list.
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/{middle.pk}/change/")
    page.keyboard.press("p")
    expect(page).to_have_url(re.compile(rf"/chatsession/{oldest.pk}/change/"))
    expect(page.locator(".messagelist")).to_contain_text("Session marked passed.")
    middle.refresh_from_db()
    assert middle.qa_status == QAStatus.PASSED
    # f on an empty note starts the note instead of a refused submit.
    page.keyboard.press("f")
    expect(page.locator("textarea[name=qa_notes]")).to_be_focused()
    oldest.refresh_from_db()
    assert oldest.qa_status == QAStatus.UNCHECKED
    assert problems == []


def test_a_key_pressed_while_the_next_page_loads_is_not_lost(page: Page, live_server):
    site = SiteFactory(name="Pricing page")
    newest = conversation(site, name="Nora Newest", question="Do you ship?", minutes_ago=1)
    middle = conversation(site, name="Mia Middle", question="Any trial?", minutes_ago=2)
    UserFactory.create(username="rhea-qa", role="qa")
    problems = watch_for_breakage(page)
    sign_in(page, live_server.url, "rhea-qa")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/{newest.pk}/change/")

    def slow(route):
        time.sleep(1.5)  # a slow script in the head: the page is shown but not parsed yet
        route.continue_()

    page.route("**/admin/jsi18n/", slow)
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf"/chatsession/{middle.pk}/change/"))
    page.keyboard.press("k")  # at once, while the page is still loading
    expect(page).to_have_url(re.compile(rf"/chatsession/{newest.pk}/change/"))
    assert problems == []


def test_the_open_page_renews_its_claim(page: Page, live_server):
    site = SiteFactory(name="Pricing page")
    session = conversation(site, name="Nora Newest", question="Do you ship?", minutes_ago=1)
    UserFactory.create(username="rhea-qa", role="qa")
    problems = watch_for_breakage(page)
    page.clock.install()
    sign_in(page, live_server.url, "rhea-qa")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/{session.pk}/change/")
    first = ReviewClaim.objects.get(session=session).claimed_until
    assert first is not None

    with page.expect_response(re.compile(r"/claim/$")) as beat:
        page.clock.run_for(125_000)  # past one heartbeat (120 s)
    assert beat.value.status == 200
    renewed = ReviewClaim.objects.get(session=session).claimed_until
    assert renewed is not None and renewed > first
    expect(page.locator(".qa-claim__until")).to_have_text(
        timezone.localtime(renewed).strftime("%H:%M")
    )
    assert problems == []


def test_the_qa_panel_stays_in_view_on_a_long_transcript(page: Page, live_server):
    site = SiteFactory(name="Pricing page")
    session = conversation(site, name="Lena Long", question="First question", minutes_ago=1)
    for i in range(60):
        message_add(session=session, role=MessageRole.VISITOR, text=f"Follow-up question {i}")
        message_add(session=session, role=MessageRole.AI, text=f"A long answer number {i}. " * 8)
    UserFactory.create(username="rhea-qa", role="qa")
    # The QA panel with its scorecard is about 850 px tall: a 1000 px window shows it whole.
    page.set_viewport_size({"width": 1366, "height": 1000})
    sign_in(page, live_server.url, "rhea-qa")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/{session.pk}/change/")
    messages = page.locator("#panel-transcript .qa-chat__msg")
    # Reading down the transcript: the middle of it, then its last message at the bottom edge.
    for message in (messages.nth(60), messages.last):
        message.evaluate("element => element.scrollIntoView({block: 'end'})")
        assert page.evaluate("window.scrollY") > 2000  # a long page, scrolled far down
        panel = page.locator("#panel-qa").bounding_box()
        assert panel is not None
        assert panel["y"] >= 0 and panel["y"] + panel["height"] <= 1000, panel  # all on screen
        expect(page.get_by_role("button", name="Mark passed & review next ›")).to_be_in_viewport()


@pytest.mark.parametrize("width", [1280, 1440])
def test_the_list_fits_without_cut_columns(page: Page, live_server, width: int, tmp_path: Path):
    site = SiteFactory(name="A landing page with a rather long name for a site")
    for i in range(8):
        session = conversation(
            site,
            name=f"Maximilian Alexander Longname-Example {i}",
            question="Price?",
            minutes_ago=i,
        )
        ChatSession.objects.filter(pk=session.pk).update(
            lead_email=f"maximilian.alexander.longname{i}@a-very-long-company-domain.example.com",
            started_at=timezone.now() - timedelta(minutes=i),
        )
    admin = UserFactory.create(username="ada-admin", role="admin")
    ReviewClaim.objects.create(
        session=ChatSession.objects.order_by("-started_at")[0],
        claimed_by=admin,
        claimed_until=timezone.now() + timedelta(minutes=5),
    )
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, live_server.url, "ada-admin")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/?qa_status=all")
    page.screenshot(path=str(tmp_path / f"changelist-{width}.png"), full_page=True)
    sizes = page.evaluate(
        """() => {
          const table = document.querySelector('#result_list');
          const results = table.closest('.results');
          const cells = [...table.querySelectorAll('th, td')];
          return {
            page: document.documentElement.scrollWidth,
            viewport: window.innerWidth,
            table: table.getBoundingClientRect().right,
            box: results.getBoundingClientRect().right,
            tableScroll: results.scrollWidth,
            boxWidth: results.clientWidth,
            cut: cells.filter(c => c.scrollWidth > c.clientWidth + 1).length,
          };
        }"""
    )
    assert sizes["page"] <= sizes["viewport"], sizes  # no horizontal scroll of the page
    assert sizes["tableScroll"] <= sizes["boxWidth"], sizes  # nor of the table's box
    assert sizes["table"] <= sizes["box"] + 1, sizes
    assert sizes["cut"] == 0, sizes  # no cell cuts its content
