"""The Leads page in a real Chromium: a person with two conversations, one row, both linked."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from sessions_app import services
from sessions_app.tests.dashboard.test_browser import Problems, sign_in
from sessions_app.tests.factories import ChatMessageFactory, ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_leads_page_lists_a_person_with_two_conversations_and_links_to_both(
    page: Page, live_server, make_user
):
    problems = Problems(page)
    site = SiteFactory(name="Acme")
    now = timezone.now()
    first = ChatSessionFactory.create(site=site, started_at=now - timedelta(days=3))
    second = ChatSessionFactory.create(site=site, started_at=now - timedelta(hours=2))
    ChatMessageFactory(session=first, text="Do you ship to Lisbon?")
    ChatMessageFactory(session=second, text="Back again about the order")
    # Through the one write path, with the email in two spellings: one person.
    services.lead_capture(session=first, name="Inês <b>Costa</b>", email="Ines@Example.com")
    services.lead_capture(session=second, email="ines@example.com")
    ChatSessionFactory(site=site, lead_name="Other", lead_email="other@example.com")

    sign_in(page, live_server, make_user("agent", username="agnes"), next_path="/dashboard/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Leads").click()
    expect(page).to_have_url(re.compile(r"/dashboard/leads/$"))
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(2)

    page.get_by_label("Search").fill("Lisbon")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    row = rows.first
    # The name is shown as typed, markup as text.
    expect(row.get_by_role("link", name="Inês <b>Costa</b>")).to_be_visible()
    expect(row.locator("td").nth(2)).to_have_text("2")

    row.get_by_role("link", name="Inês <b>Costa</b>").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Inês <b>Costa</b>")
    conversations = page.locator("#conversations tbody tr")
    expect(conversations).to_have_count(2)
    for session in (second, first):
        link = page.locator(f'tr[data-session="{session.public_id}"]').get_by_role("link")
        expect(link).to_have_attribute("href", f"/dashboard/sessions/{session.public_id}/")

    page.locator(f'tr[data-session="{first.public_id}"]').get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/sessions/{first.public_id}/$"))
    expect(page.locator("#transcript")).to_contain_text("Do you ship to Lisbon?")
    page.go_back()
    page.locator(f'tr[data-session="{second.public_id}"]').get_by_role("link").click()
    expect(page.locator("#transcript")).to_contain_text("Back again about the order")
    assert problems.items == []
