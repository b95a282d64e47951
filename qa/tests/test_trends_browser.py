"""A manager reading QA trends in a real browser (Chromium): the known week's figures, the
range filter, and no missing asset."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from qa.tests.test_browser import sign_in, watch_for_breakage
from qa.tests.trends_data import Clock, build_story

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_reads_the_trends_and_narrows_the_range(
    page: Page, live_server, monkeypatch, make_user
):
    from qa.models import FailureCategory

    # Seeded by qa 0004; an earlier transactional test may have flushed them.
    for name in ("Hallucination", "Missed lead", "Tone", "Policy"):
        FailureCategory.objects.get_or_create(name=name)
    build_story(Clock(monkeypatch, datetime(2026, 11, 17, 9, 0, tzinfo=UTC)), make_user)
    monkeypatch.undo()  # the real clock again for the browser's session
    problems = watch_for_breakage(page)
    sign_in(page, live_server.url, "ada")
    page.goto(f"{live_server.url}/admin/sessions_app/chatsession/")
    page.get_by_role("link", name="QA trends").click()
    expect(page.get_by_role("heading", name="QA trends")).to_be_visible()

    page.get_by_label("From").fill("2026-11-16")
    page.get_by_label("to", exact=True).fill("2026-11-29")
    page.get_by_role("button", name="Show").click()
    categories = page.locator("#qa-trends-categories")
    any_issue = categories.locator("tr", has_text="Any issue (flagged)")
    expect(any_issue).to_contain_text("66.7%")
    expect(any_issue).to_contain_text("33.3%")
    expect(any_issue.locator("td").last).to_have_text("50%")
    expect(categories.locator("tr", has_text="Hallucination").locator("td").last).to_have_text(
        "33.3%"
    )
    expect(page.locator("#qa-trends-versions")).to_contain_text("openai · gpt-test · bbbb")
    expect(page.locator("#qa-trends-leads tr.qa-trends-total")).to_contain_text("60%")
    expect(page.locator("#qa-trends-cycles")).to_contain_text("18.0 h")
    reviewers = page.locator("#qa-trends-reviewers")
    expect(reviewers.locator("tr", has_text="quinn").locator("td").nth(2)).to_have_text("5")
    assert page.locator("meter.qa-trends-bar").count() > 10

    # One week only: week 2's sessions.
    page.get_by_label("From").fill("2026-11-23")
    page.get_by_role("button", name="Show").click()
    expect(any_issue.locator("td").last).to_have_text("33.3%")
    expect(page.locator("#qa-trends-categories thead th")).to_have_count(3)
    assert problems == []
