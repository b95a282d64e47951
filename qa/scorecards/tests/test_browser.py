"""A reviewer scores a session, picks a failure category, judges the lead and annotates an AI
message in a real browser (Chromium), and sees it all in the transcript and the history."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from qa.models import Criterion, FailureCategory, MessageAnnotation, Scorecard
from qa.scorecards.models import CriterionKind
from qa.tests.test_browser import conversation, sign_in, watch_for_breakage
from sessions_app.models import MessageRole, QAStatus
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_scores_categorises_judges_the_lead_and_annotates(page: Page, live_server):
    reviewer = UserFactory.create(username="rhea-qa", role="qa")
    site = SiteFactory(name="Pricing page")
    session = conversation(site, name="Dan Visitor", question="Any discount?", minutes_ago=1)
    Criterion.objects.create(name="Answered accurately", kind=CriterionKind.PASS_FAIL, order=1)
    Criterion.objects.create(name="Tone of voice", kind=CriterionKind.SCORE, order=2)
    # Seeded by qa 0004; an earlier transactional test may have flushed it.
    FailureCategory.objects.get_or_create(name="Hallucination")
    ai = session.messages.filter(role=MessageRole.AI).order_by("id").last()
    assert ai is not None
    problems = watch_for_breakage(page)
    base = live_server.url

    sign_in(page, base, reviewer.username)
    page.goto(f"{base}/admin/sessions_app/chatsession/{session.pk}/change/")
    qa_panel = page.locator("#panel-qa")

    # Annotates the AI's reply from the transcript (a <details> box, no script needed).
    reply = page.locator(f"#message-{ai.pk}")
    reply.get_by_text("Annotate").click()
    reply.get_by_label("Note").fill("<b>Promised</b> a discount we do not give")
    reply.get_by_label("Expected reply (optional)").fill("Our prices are on the pricing page.")
    reply.get_by_role("button", name="Add annotation").click()
    expect(page.locator(".messagelist")).to_contain_text("Annotation added.")
    reply = page.locator(f"#message-{ai.pk}")
    expect(reply.locator(".qa-annotation__note")).to_have_text(
        "<b>Promised</b> a discount we do not give"  # stored text, shown as text
    )
    expect(reply.locator(".qa-annotation__expected")).to_contain_text(
        "Our prices are on the pricing page."
    )

    # Scores, picks a category, judges the lead fields and flags the issue in one submit.
    qa_panel.get_by_label("Answered accurately").select_option("Fail")
    qa_panel.get_by_label("Tone of voice").select_option("4")
    qa_panel.get_by_label("Hallucination").check()
    lead = qa_panel.locator(".qa-scorecard__lead")
    expect(lead).to_contain_text("Dan Visitor")
    qa_panel.get_by_label("Name", exact=True).select_option("correct")
    qa_panel.get_by_label("Email", exact=True).select_option("invented")
    qa_panel.get_by_label("Phone", exact=True).select_option("missing")
    qa_panel.get_by_label("QA note").fill("Invented a discount.")
    qa_panel.get_by_role("button", name="Flag issue", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("Session flagged as an issue.")

    # The page shows the card again, the annotation is still beside its message, and the
    # history tells both.
    qa_panel = page.locator("#panel-qa")
    expect(qa_panel.get_by_label("Tone of voice")).to_have_value("4")
    expect(qa_panel.get_by_label("Hallucination")).to_be_checked()
    expect(qa_panel.get_by_label("Email", exact=True)).to_have_value("invented")
    expect(page.locator(f"#message-{ai.pk} .qa-annotation")).to_have_count(1)
    history = page.locator("#panel-history")
    expect(history).to_contain_text("Scores: Answered accurately fail, Tone of voice 4/5.")
    expect(history).to_contain_text("Categories: Hallucination.")
    expect(history).to_contain_text("Lead: Name correct, Email invented, Phone missing.")
    expect(history).to_contain_text("Annotation")
    expect(history).to_contain_text("Expected reply: Our prices are on the pricing page.")

    session.refresh_from_db()
    assert session.qa_status == QAStatus.ISSUE
    card = Scorecard.objects.get(session=session)
    assert (card.reviewer, card.email_verdict) == (reviewer, "invented")
    assert MessageAnnotation.objects.get().message == ai
    assert problems == []


def test_flagging_without_a_category_is_refused_in_the_browser(page: Page, live_server):
    reviewer = UserFactory.create(username="rhea-qa", role="qa")
    session = conversation(SiteFactory(), name="Eve Visitor", question="Hello?", minutes_ago=1)
    FailureCategory.objects.get_or_create(name="Hallucination")
    base = live_server.url
    sign_in(page, base, reviewer.username)
    page.goto(f"{base}/admin/sessions_app/chatsession/{session.pk}/change/")
    page.get_by_label("QA note").fill("Something is off.")
    page.get_by_role("button", name="Flag issue", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text(
        "Pick at least one failure category before flagging an issue."
    )
    # The typed note is kept for the second try.
    expect(page.get_by_label("QA note")).to_have_value("Something is off.")
    expect(page).to_have_url(re.compile(rf"/chatsession/{session.pk}/"))
    session.refresh_from_db()
    assert session.qa_status == QAStatus.UNCHECKED
