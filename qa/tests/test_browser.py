"""A reviewer and a developer working the QA console in a real browser (Chromium)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import TEST_PASSWORD, UserFactory
from qa.models import FailureCategory, QAHistory
from sessions_app.models import ChatSession, MessageRole, QAStatus
from sessions_app.services import lead_capture, message_add, session_start
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def conversation(site, *, name: str, question: str, minutes_ago: int) -> ChatSession:
    session, _ = session_start(site=site, page_url="https://landing.example.com/", greeting="Hi!")
    message_add(session=session, role=MessageRole.VISITOR, text=question)
    message_add(
        session=session,
        role=MessageRole.AI,
        text=f"Happy to help with: {question}",
        metadata={"backend": "scripted", "latency_ms": 37},
    )
    lead_capture(session=session, name=name, email=f"{name.split()[0].lower()}@example.com")
    started = timezone.now() - timedelta(minutes=minutes_ago)
    ChatSession.objects.filter(pk=session.pk).update(started_at=started)
    return ChatSession.objects.get(pk=session.pk)


def watch_for_breakage(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Review AI conversations")).to_be_visible()


def test_reviewer_flags_an_issue_reviews_next_and_admin_marks_it_fixed(page: Page, live_server):
    reviewer = UserFactory.create(username="rhea-qa", role="qa")
    developer = UserFactory.create(username="dev-admin", role="admin")
    site = SiteFactory(name="Pricing page")
    first = conversation(site, name="Nora Newest", question="Do you ship to Norway?", minutes_ago=1)
    second = conversation(site, name="Oscar Older", question="Is there a trial?", minutes_ago=5)
    # Seeded by qa 0004; an earlier transactional test may have flushed it.
    FailureCategory.objects.get_or_create(name="Wrong information")
    problems = watch_for_breakage(page)
    base = live_server.url

    # The reviewer signs in and opens the queue: unchecked sessions, newest first.
    sign_in(page, base, reviewer.username)
    page.locator("tr.model-chatsession th a").click()
    expect(page.locator("#changelist-filter li.selected", has_text="Unchecked")).to_be_visible()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Nora Newest")

    # Reads the transcript as a chat.
    rows.first.get_by_role("link").first.click()
    transcript = page.locator("#panel-transcript")
    expect(transcript.locator(".qa-chat__msg--visitor")).to_contain_text("Do you ship to Norway?")
    expect(transcript.locator(".qa-chat__msg--agent").last).to_contain_text(
        "Happy to help with: Do you ship to Norway?"
    )
    expect(transcript).to_contain_text("37 ms")
    # Reviewers never see the developer's controls.
    expect(page.get_by_role("button", name="Mark fixed")).to_have_count(0)
    expect(page.locator("textarea[name=dev_feedback]")).to_have_count(0)

    # Flags an issue with a note and a failure category (an issue needs one), and goes
    # straight on to the next session of the queue.
    page.get_by_label("QA note").fill("Claims we ship to Norway; we do not.")
    page.get_by_label("Wrong information").check()
    page.get_by_role("button", name="Flag issue & review next ›").click()
    expect(page).to_have_url(re.compile(rf"/admin/sessions_app/chatsession/{second.pk}/change/"))
    expect(page.locator(".messagelist")).to_contain_text("Session flagged as an issue.")
    expect(page.locator("#panel-transcript")).to_contain_text("Is there a trial?")

    first.refresh_from_db()
    assert (first.qa_status, first.qa_status_by, first.qa_notes) == (
        QAStatus.ISSUE,
        reviewer,
        "Claims we ship to Norway; we do not.",
    )

    # Passing the last one clears the queue.
    page.get_by_role("button", name="Mark passed & review next ›").click()
    expect(page.locator(".messagelist")).to_contain_text("Queue clear")
    expect(page.locator("p.paginator")).to_contain_text("0 chat sessions")

    # The developer (admin) signs in, finds the issue and marks it fixed with feedback.
    page.get_by_role("button", name="Log out").click()
    sign_in(page, base, developer.username)
    page.goto(f"{base}/admin/sessions_app/chatsession/")
    page.locator("#changelist-filter").get_by_role("link", name="Issue", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    expect(page.locator("#panel-qa")).to_contain_text("Claims we ship to Norway; we do not.")
    expect(page.get_by_role("button", name="Mark passed", exact=True)).to_have_count(0)
    page.get_by_label("Developer feedback").fill(
        "Shipping countries now come from the site config."
    )
    page.get_by_role("button", name="Mark fixed", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("Session marked fixed.")
    history = page.locator("#panel-history")
    expect(history).to_contain_text("Issue → Fixed")
    expect(history).to_contain_text("dev-admin")
    expect(history).to_contain_text("Unchecked → Issue")
    expect(history).to_contain_text("rhea-qa")

    first.refresh_from_db()
    assert first.qa_status == QAStatus.FIXED
    assert (first.dev_feedback, first.dev_feedback_by) == (
        "Shipping countries now come from the site config.",
        developer,
    )
    assert [
        (h.to_status, h.by)
        for h in QAHistory.objects.filter(session=first, kind=QAHistory.Kind.MOVE).order_by("id")
    ] == [
        (QAStatus.ISSUE, reviewer),
        (QAStatus.FIXED, developer),
    ]
    assert problems == []
