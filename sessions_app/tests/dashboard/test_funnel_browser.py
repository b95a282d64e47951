"""The overview's widget funnel (opened -> engaged -> lead) in a real Chromium, on a known data
set, for the default range and with the site filter."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from sessions_app.models import Channel, CompletionStatus
from sessions_app.services import widget_opening_count
from sessions_app.tests.dashboard.test_browser import Problems, sign_in
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def problems(page: Page) -> Problems:
    return Problems(page)


def test_overview_shows_the_funnel_for_the_range_and_the_site(
    page: Page, live_server, make_user, problems
):
    acme, other = SiteFactory.create(name="Acme"), SiteFactory.create(name="Other")
    yesterday = timezone.now() - timedelta(days=1)
    for site, times in [(acme, 8), (other, 2)]:
        for _ in range(times):
            widget_opening_count(site_id=site.pk, now=yesterday)
    widget_opening_count(site_id=acme.pk, now=timezone.now() - timedelta(days=60))  # outside
    web = {"channel": Channel.WEB, "ai_engaged": True, "started_at": yesterday}
    lead = {"completion_status": CompletionStatus.COMPLETE, "lead_captured_at": yesterday}
    ChatSessionFactory(site=acme, **web, **lead)
    ChatSessionFactory(site=acme, **web)
    ChatSessionFactory(site=acme, **web)
    ChatSessionFactory(site=acme, **web)
    ChatSessionFactory(site=other, **web, **lead)

    sign_in(page, live_server, make_user("agent", username="fran"))
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1)
    funnel = page.locator("#funnel")
    expect(funnel.locator('[data-funnel="opened"]')).to_have_text("10")
    expect(funnel.locator('[data-funnel="engaged"]')).to_have_text("5")
    expect(funnel.locator('[data-funnel="engaged_rate"]')).to_have_text("50 % of those who opened")
    expect(funnel.locator('[data-funnel="leads"]')).to_have_text("2")
    expect(funnel.locator('[data-funnel="leads_rate"]')).to_have_text("40 % of those who wrote")

    page.get_by_label("Site").select_option(label="Acme")
    page.get_by_role("button", name="Apply").click()

    expect(funnel.locator('[data-funnel="opened"]')).to_have_text("8")
    expect(funnel.locator('[data-funnel="engaged"]')).to_have_text("4")
    expect(funnel.locator('[data-funnel="engaged_rate"]')).to_have_text("50 % of those who opened")
    expect(funnel.locator('[data-funnel="leads"]')).to_have_text("1")
    expect(funnel.locator('[data-funnel="leads_rate"]')).to_have_text("25 % of those who wrote")
    assert problems.items == []
