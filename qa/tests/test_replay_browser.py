"""The replay loop in a real browser: a developer marks a session fixed, the worker replays it
against the changed agent, and QA reads the two side by side and verifies the fix."""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.tests.factories import UserFactory
from leadchat.testing import LoopbackServer
from qa import services as qa_services
from qa.replay.models import Replay, ReplayStatus
from qa.replay.services import replay_job_run
from qa.tests.test_browser import sign_in, watch_for_breakage
from qa.tests.test_replay import QUESTIONS, ChangingOpenAI, conversation, openai_site
from sessions_app.models import QAStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_qa_reads_the_replay_beside_the_original_and_verifies_the_fix(
    page: Page, live_server, settings
):
    settings.WIDGET_AGENT_TIMEOUT = 2.0
    reviewer = UserFactory.create(username="rhea-qa", role="qa")
    developer = UserFactory.create(username="dev-admin", role="admin")
    agent = ChangingOpenAI()
    problems = watch_for_breakage(page)
    base = live_server.url
    with LoopbackServer(agent) as server:
        site = openai_site(server.url)
        session = conversation(site)
        other = conversation(site, questions=["Is there a trial?"])
        qa_services.qa_mark_issue(session=session, by=reviewer, note="Wrong shipping answer")

        # The developer marks it fixed in the console: the replay is queued with the move.
        sign_in(page, base, developer.username)
        page.goto(f"{base}/admin/sessions_app/chatsession/{session.pk}/change/")
        page.get_by_label("Developer feedback").fill("New prompt for shipping questions.")
        page.get_by_role("button", name="Mark fixed", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("Session marked fixed.")
        expect(page.locator("#panel-replays")).to_contain_text("Queued")

        # The fix changed the agent's answers; the worker replays the visitor's turns.
        agent.era = "after"
        assert replay_job_run("browser-test-worker", 5) == 1
        replay = Replay.objects.get(session=session)
        assert replay.status == ReplayStatus.DONE, replay.reason

        # QA opens the session, then its replay, and reads the two side by side.
        page.get_by_role("button", name="Log out").click()
        sign_in(page, base, reviewer.username)
        page.goto(f"{base}/admin/sessions_app/chatsession/{session.pk}/change/")
        box = page.locator("#panel-replays")
        expect(box).to_contain_text("Done")
        expect(box).to_contain_text("Marked fixed")
        box.get_by_role("link").first.click()
        expect(page).to_have_url(re.compile(rf"/admin/qa/replay/{replay.pk}/change/"))
        table = page.locator("table.qa-sbs")
        expect(table.locator("thead")).to_contain_text("Original answer")
        expect(table.locator("thead")).to_contain_text("Replay (agent now)")
        for question in QUESTIONS:
            row = table.locator("tbody tr", has_text=question)
            expect(row.locator(".qa-sbs__original")).to_contain_text(f"Old: {question}")
            expect(row.locator(".qa-sbs__replay")).to_contain_text(f"New: {question}")
            expect(row).to_have_class(re.compile("qa-sbs__row--changed"))
        expect(page.locator(".qa-replay__version")).to_contain_text("openai · m-1 · ")

        # Verified: the session is passed, through the QA services.
        page.get_by_role("button", name="Verified by the replay: mark passed").click()
        expect(page.locator(".messagelist")).to_contain_text("Session marked passed.")
        expect(page.locator("#panel-history")).to_contain_text("Fixed → Passed")
        session.refresh_from_db()
        assert (session.qa_status, session.qa_status_by) == (QAStatus.PASSED, reviewer)

        # And on demand: "Replay now" from another session's page.
        page.goto(f"{base}/admin/sessions_app/chatsession/{other.pk}/change/")
        page.get_by_role("button", name="Replay now").click()
        expect(page.locator(".messagelist")).to_contain_text("Replay queued")
        expect(page.locator(".qa-replay")).to_contain_text("Queued")
        assert Replay.objects.filter(session=other, requested_by=reviewer).exists()
    assert problems == []
