"""The session list's email-quality badge (issue 16) in a real Chromium."""

import pytest
from playwright.sync_api import expect

from sessions_app.models import CompletionStatus, EmailQuality
from sessions_app.tests.dashboard.test_browser import agent, problems, sign_in  # noqa: F401
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_session_list_shows_email_quality_but_not_for_valid(page, live_server, agent, problems):  # noqa: F811
    flagged = ChatSessionFactory(
        completion_status=CompletionStatus.COMPLETE,
        lead_name="Ana",
        lead_email="ana@mailinator.com",
        email_quality=EmailQuality.DISPOSABLE,
    )
    valid = ChatSessionFactory(
        completion_status=CompletionStatus.COMPLETE,
        lead_name="Bob",
        lead_email="bob@example.com",
        email_quality=EmailQuality.VALID,
    )
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    badge = page.locator(f'tr[data-id="{flagged.public_id}"] .email-quality-badge')
    expect(badge).to_have_text("Email: disposable")
    expect(badge).to_have_class("badge text-bg-warning email-quality-badge")
    valid_row = page.locator(f'tr[data-id="{valid.public_id}"]')
    expect(valid_row).to_be_visible()
    expect(valid_row.locator(".email-quality-badge")).to_have_count(0)
    assert problems.items == []
