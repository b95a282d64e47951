"""The dashboard in a real Chromium: what an agent does and sees.

Every test fails on a JavaScript error, a console error (CSP violations land there) or any
response >= 400 (a missing vendored asset, a refused API call).
"""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.tests.factories import TEST_PASSWORD
from sessions_app import services
from sessions_app.models import ArchiveStatus, ChatSession, CompletionStatus, MessageRole
from sessions_app.tests.factories import (
    AutomationErrorFactory,
    ChatMessageFactory,
    ChatSessionFactory,
)
from widget.tests.factories import SiteFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE_TIMEOUT_MS = 5000  # the issue: changes appear within 5 seconds


class Problems:
    def __init__(self, page: Page) -> None:
        self.items: list[str] = []
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: self.items.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.on(
            "response",
            lambda r: self.items.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )


@pytest.fixture
def problems(page: Page) -> Problems:
    return Problems(page)


@pytest.fixture
def agent(make_user):
    return make_user("agent", username="agnes")


def sign_in(page: Page, live_server, user, next_path: str = "/dashboard/") -> None:
    page.goto(live_server.url + next_path)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + r"(\?.*)?$"))


def month_of_sessions(site) -> list[ChatSession]:
    now = timezone.now()
    made = []
    for day in range(10):
        session = ChatSessionFactory.create(
            site=site,
            started_at=now - timedelta(days=day, hours=1),
            page_url=f"https://landing.example.com/p{day % 3}",
            completion_status=(
                CompletionStatus.COMPLETE if day % 2 else CompletionStatus.IN_PROGRESS
            ),
            lead_name=f"Lead {day}" if day % 2 else "",
            lead_email=f"lead{day}@example.com" if day % 2 else "",
            lead_captured_at=now - timedelta(days=day) if day % 2 else None,
            message_count=3,
        )
        ChatMessageFactory(session=session, role=MessageRole.AI, metadata={"latency_ms": 900})
        made.append(session)
    return made


def test_sign_in_then_overview_charts_render_with_data(page, live_server, agent, problems):
    month_of_sessions(SiteFactory())
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1), problems.items
    expect(page.locator('[data-kpi="sessions"]')).to_have_text("10")
    expect(page.locator('[data-kpi="leads"]')).to_have_text("5")
    expect(page.locator('[data-kpi="conversion_rate"]')).to_contain_text("50")
    drawn = page.evaluate(
        """() => ["chart-per-day", "chart-completion", "chart-qa"].map(id => {
            const chart = Chart.getChart(id);
            return chart ? chart.data.datasets[0].data.reduce((a, b) => a + b, 0) : -1;
        })"""
    )
    assert drawn == [10, 10, 10]
    expect(page.locator("#top-pages tr")).to_have_count(3)
    assert problems.items == []


def test_overview_shows_ai_tokens_and_cost_per_lead(page, live_server, agent, problems):
    month_of_sessions(SiteFactory(ai_price_per_1k_tokens=Decimal("1.5")))
    ChatSession.objects.update(ai_tokens=400)  # 4,000 tokens over 5 leads, 6.00 at 1.5 / 1k
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1), problems.items
    # Digits grouped and decimals marked the browser's way: match either style.
    expect(page.locator('[data-kpi="ai_tokens"]')).to_have_text(re.compile(r"^4\D?000$"))
    expect(page.locator('[data-kpi="ai_tokens_per_lead"]')).to_have_text("800 per lead")
    expect(page.locator('[data-kpi="ai_cost_per_lead"]')).to_have_text(re.compile(r"^1[.,]2$"))
    expect(page.locator('[data-kpi="ai_cost"]')).to_have_text("6 in total")
    assert problems.items == []


def test_new_session_and_status_change_appear_without_reload(page, live_server, agent, problems):
    site = SiteFactory()
    existing = ChatSessionFactory(site=site, lead_name="Existing Person")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator(f'tr[data-id="{existing.public_id}"]')).to_be_visible()
    page.evaluate("window.__marker = 'same page'")

    session, _ = services.session_start(
        site=site, page_url="https://landing.example.com/live", greeting="Hi!"
    )
    row = page.locator(f'tr[data-id="{session.public_id}"]')
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text("Anonymous visitor")

    services.lead_capture(session=session, name="Live Lead", email="live@example.com")
    expect(row).to_contain_text("Live Lead", timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text("Complete")

    services.session_archive(session=existing, by=None)  # someone else archives it
    expect(page.locator(f'tr[data-id="{existing.public_id}"]')).to_have_count(
        0, timeout=LIVE_TIMEOUT_MS
    )
    assert page.evaluate("window.__marker") == "same page"  # no reload happened
    assert problems.items == []


def test_an_ingested_conversation_appears_live_with_its_channel_badge(
    page, live_server, agent, problems
):
    from sessions_app.ingest import message_ingest

    web = ChatSessionFactory(lead_name="Web Person")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator(f'tr[data-id="{web.public_id}"]')).to_be_visible()
    ingested = message_ingest(
        channel="telegram",
        conversation_id="-100123",
        message_id="1",
        role=MessageRole.VISITOR,
        text="Hi from Telegram",
        lead={"name": "Tele Gram"},
    ).session
    row = page.locator(f'tr[data-id="{ingested.public_id}"]')
    expect(row).to_contain_text("Tele Gram", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".channel-badge")).to_have_text("Telegram")
    expect(row.locator(".channel-badge")).to_have_class(re.compile(r"text-bg-info"))
    # The widget's own sessions, most of them, carry no channel badge.
    expect(page.locator(f'tr[data-id="{web.public_id}"] .channel-badge')).to_have_count(0)
    assert problems.items == []


def test_archive_then_undo(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="Undo Me")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    row = page.locator(f'tr[data-id="{session.public_id}"]')
    row.get_by_role("button", name=re.compile("Archive session")).click()
    expect(row).to_have_count(0)
    toast = page.locator(".toast", has_text="archived")
    expect(toast).to_be_visible()
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ARCHIVED

    toast.get_by_role("button", name="Undo").click()
    expect(page.locator(f'tr[data-id="{session.public_id}"]')).to_be_visible()
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ACTIVE
    assert problems.items == []


def test_delete_then_restore_from_the_trash(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="Trash Me")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    page.locator(f'tr[data-id="{session.public_id}"]').get_by_role(
        "button", name=re.compile("Delete session")
    ).click()
    expect(page.locator(f'tr[data-id="{session.public_id}"]')).to_have_count(0)
    page.goto(live_server.url + "/dashboard/trash/")
    trash_row = page.locator(f'tr[data-id="{session.public_id}"]')
    trash_row.get_by_role("button", name=re.compile("Restore session")).click()
    expect(trash_row).to_have_count(0)
    session.refresh_from_db()
    assert session.deleted_at is None
    assert problems.items == []


def test_bulk_archive_with_the_keyboard(page, live_server, agent, problems):
    sessions = ChatSessionFactory.create_batch(3)
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.locator("tr[data-id]")).to_have_count(3)
    page.locator("#select-all").focus()
    page.keyboard.press("Space")
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_role("button", name="Archive selected").focus()
    page.keyboard.press("Enter")
    expect(page.locator("tr[data-id]")).to_have_count(0)
    assert {
        s.archive_status for s in ChatSession.objects.filter(pk__in=[s.pk for s in sessions])
    } == {ArchiveStatus.ARCHIVED}
    assert problems.items == []


def test_theme_toggle_persists_across_reloads(page, live_server, agent, problems):
    page.emulate_media(color_scheme="light")
    sign_in(page, live_server, agent)
    html = page.locator("html")
    expect(html).to_have_attribute("data-bs-theme", "light")
    page.get_by_role("button", name="Toggle dark theme").click()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    page.reload()
    expect(html).to_have_attribute("data-bs-theme", "dark")
    assert page.evaluate("localStorage.getItem('leadchat-theme')") == "dark"
    page.get_by_role("button", name="Toggle dark theme").click()
    page.goto(live_server.url + "/dashboard/sessions/")
    expect(html).to_have_attribute("data-bs-theme", "light")
    assert problems.items == []


def test_theme_follows_the_system_until_chosen(page, live_server, agent, problems):
    page.emulate_media(color_scheme="dark")
    sign_in(page, live_server, agent)
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    assert problems.items == []


def test_every_page_loads_without_errors_or_failed_assets(page, live_server, agent, problems):
    session = month_of_sessions(SiteFactory())[1]
    AutomationErrorFactory(session=session, message="n8n node failed")
    services.session_delete(session=month_of_sessions(SiteFactory())[0], by=None)
    sign_in(page, live_server, agent)
    for path in [
        "/dashboard/",
        "/dashboard/sessions/",
        f"/dashboard/sessions/{session.public_id}/",
        "/dashboard/trash/",
        "/dashboard/errors/",
        "/accounts/password/",
        "/api/docs/",
    ]:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    expect(page.locator(".swagger-ui")).to_be_visible()
    assert problems.items == []


def test_session_detail_shows_transcript_and_resolves_errors(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="Detail Person", lead_email="d@example.com")
    ChatMessageFactory(session=session, role=MessageRole.VISITOR, text="<b>not bold</b>")
    error = AutomationErrorFactory(session=session, message="Webhook failed")
    sign_in(page, live_server, agent, f"/dashboard/sessions/{session.public_id}/")
    expect(page.locator("#transcript")).to_contain_text("<b>not bold</b>")
    page.locator(f'[data-resolve="{error.pk}"]').click()
    expect(page.locator(f'li[data-error="{error.pk}"]')).to_contain_text("Resolved")
    error.refresh_from_db()
    assert error.resolved
    page.get_by_role("button", name="Archive").click()
    expect(page.locator("#archive-badge")).to_have_text("Archived")
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(page.locator("#archive-badge")).to_have_text("Active")
    assert problems.items == []


def test_phone_layout_keeps_the_table_usable(page, live_server, agent, problems):
    page.set_viewport_size({"width": 390, "height": 844})
    ChatSessionFactory(lead_name="Phone Person")
    sign_in(page, live_server, agent, "/dashboard/sessions/")
    expect(page.get_by_role("link", name="Phone Person")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert problems.items == []


def test_wrong_password_shows_the_error_in_the_page(page, live_server, agent, problems):
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill(agent.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("correct username and password")
    assert problems.items == []


# --- Status badges: written once in Python (sessions_app.badges), read by the scripts ---------

LIST_BADGES = {
    # (completion, archive, qa, delivery) -> the badges of its row: (class, text)
    ("in_progress", "active", "unchecked", "none"): [("badge text-bg-info", "In progress")],
    ("complete", "archived", "passed", "delivered"): [
        ("badge text-bg-success", "Complete"),
        ("badge text-bg-secondary archive-badge", "Archived"),
        ("badge text-bg-success", "QA: passed"),
        ("badge text-bg-success", "Delivered"),
    ],
    ("incomplete", "active", "issue", "failed"): [
        ("badge text-bg-secondary", "Incomplete"),
        ("badge text-bg-danger", "QA: issue"),
        ("badge text-bg-danger", "Delivery failed"),
    ],
    ("in_progress", "active", "fixed", "paused"): [
        ("badge text-bg-info", "In progress"),
        ("badge text-bg-warning", "QA: fixed"),
        ("badge text-bg-warning", "Delivery paused"),
    ],
    ("complete", "active", "unchecked", "pending"): [
        ("badge text-bg-success", "Complete"),
        ("badge text-bg-info", "Delivery pending"),
    ],
    ("complete", "active", "unchecked", "disabled"): [
        ("badge text-bg-success", "Complete"),
        ("badge text-bg-secondary", "No endpoint"),
    ],
}


def test_session_list_badges_keep_their_colours_and_labels(page, live_server, agent, problems):
    made = {
        statuses: ChatSessionFactory(
            completion_status=statuses[0],
            archive_status=statuses[1],
            qa_status=statuses[2],
            delivery_state=statuses[3],
        )
        for statuses in LIST_BADGES
    }
    sign_in(page, live_server, agent, "/dashboard/sessions/?archive=all")
    for statuses, session in made.items():
        cell = page.locator(f'tr[data-id="{session.public_id}"] .status-cell')
        expect(cell).to_be_visible()
        shown = cell.locator(".badge").evaluate_all(
            "nodes => nodes.map(n => [n.className, n.textContent])"
        )
        assert [tuple(badge) for badge in shown] == LIST_BADGES[statuses], statuses
    assert problems.items == []


def test_detail_archive_badge_changes_colour_with_the_move(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="Badge Person")
    sign_in(page, live_server, agent, f"/dashboard/sessions/{session.public_id}/")
    badge = page.locator("#archive-badge")
    expect(badge).to_have_class("badge text-bg-primary")
    page.get_by_role("button", name="Archive").click()
    expect(badge).to_have_text("Archived")
    expect(badge).to_have_class("badge text-bg-secondary")
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(badge).to_have_text("Active")
    expect(badge).to_have_class("badge text-bg-primary")
    assert problems.items == []


def test_overview_charts_label_the_statuses(page, live_server, agent, problems):
    month_of_sessions(SiteFactory())
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1), problems.items
    labels = page.evaluate(
        """() => ["chart-completion", "chart-qa"].map(id => Chart.getChart(id).data.labels)"""
    )
    assert labels == [
        ["In progress", "Complete", "Incomplete"],
        ["Unchecked", "Passed", "Issue", "Fixed"],
    ]
    assert problems.items == []


def test_detail_history_shows_a_move_without_reload(page, live_server, agent, problems):
    session = ChatSessionFactory(lead_name="History Person")
    sign_in(page, live_server, agent, f"/dashboard/sessions/{session.public_id}/")
    history = page.locator('[data-panel="history"]')
    expect(history).to_contain_text("No changes yet")
    page.get_by_role("button", name="Archive").click()
    entry = page.locator('[data-panel="history"] [data-history="lifecycle"]')
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(f"by {agent.get_username()}")
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(page.locator('[data-panel="history"] [data-history="lifecycle"]')).to_have_count(2)
    assert problems.items == []


def test_overview_lists_sessions_and_leads_per_channel(page, live_server, agent, problems):
    sessions = month_of_sessions(SiteFactory())
    ChatSession.objects.filter(pk=sessions[0].pk).update(channel="messenger")
    sign_in(page, live_server, agent)
    expect(page.locator("body[data-stats-loaded]")).to_have_count(1), problems.items
    rows = page.locator("#channels tr")
    expect(rows.first).to_contain_text("Web widget")
    expect(page.locator("#channels")).to_contain_text("Messenger")
    assert problems.items == []
