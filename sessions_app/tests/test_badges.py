"""The status badge table (sessions_app.badges) written out; the dashboard and console use it."""

import json

import pytest
from django.urls import reverse

from qa.display import qa_badge, state_badge
from sessions_app.badges import BADGES, badge, badges_config
from sessions_app.tests.factories import ChatSessionFactory

EXPECTED = {
    # kind -> value -> (label, Bootstrap style, label in the session list)
    "completion": {
        "in_progress": ("In progress", "info", "In progress"),
        "complete": ("Complete", "success", "Complete"),
        "incomplete": ("Incomplete", "secondary", "Incomplete"),
    },
    "archive": {
        "active": ("Active", "primary", "Active"),
        "archived": ("Archived", "secondary", "Archived"),
    },
    "qa": {
        "unchecked": ("Unchecked", "light", "QA: unchecked"),
        "passed": ("Passed", "success", "QA: passed"),
        "issue": ("Issue", "danger", "QA: issue"),
        "fixed": ("Fixed", "warning", "QA: fixed"),
    },
    "delivery": {
        "none": ("No lead yet", "light", "No lead yet"),
        "pending": ("Pending", "info", "Delivery pending"),
        "delivered": ("Delivered", "success", "Delivered"),
        "failed": ("Failed", "danger", "Delivery failed"),
        "paused": ("Paused (endpoint off)", "warning", "Delivery paused"),
        "disabled": ("No endpoint", "secondary", "No endpoint"),
    },
    "channel": {
        "web": ("Web widget", "light", "Web widget"),
        "messenger": ("Messenger", "primary", "Messenger"),
        "api": ("API", "dark", "API"),
        "whatsapp": ("WhatsApp", "success", "WhatsApp"),
        "instagram": ("Instagram", "warning", "Instagram"),
        "telegram": ("Telegram", "info", "Telegram"),
    },
    "human": {
        "none": ("No request", "light", "No request"),
        "requested": ("Needs a human", "danger", "Needs a human"),
    },
    "email_quality": {
        "valid": ("Valid", "success", "Email valid"),
        "no_mx": ("No mail server", "danger", "Email: no mail server"),
        "disposable": ("Disposable", "warning", "Email: disposable"),
        "role": ("Role address", "info", "Email: role address"),
        "unverifiable": ("Unverifiable", "secondary", "Email: unverified"),
    },
    "outbox": {
        "pending": ("Pending", "warning", "Pending"),
        "sending": ("Sending", "warning", "Sending"),
        "delivered": ("Delivered", "success", "Delivered"),
        "failed": ("Failed", "danger", "Failed"),
        "cancelled": ("Cancelled", "secondary", "Cancelled"),
    },
}


def test_the_badge_table_is_the_one_written_out_here():
    got = {
        kind: {value: (b.label, b.style, b.list_label) for value, b in values.items()}
        for kind, values in BADGES.items()
    }
    assert got == EXPECTED


def test_an_unknown_status_shows_as_itself_in_grey():
    unknown = badge("qa", "escalated")
    assert (unknown.label, unknown.style, unknown.list_label) == (
        "escalated",
        "secondary",
        "escalated",
    )


def test_the_scripts_get_the_same_table():
    config = badges_config()
    assert config["delivery"]["paused"] == {
        "label": "Paused (endpoint off)",
        "style": "warning",
        "listLabel": "Delivery paused",
    }
    assert {kind: set(values) for kind, values in config.items()} == {
        kind: set(values) for kind, values in EXPECTED.items()
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["dashboard:overview", "dashboard:sessions", "dashboard:trash", "dashboard:errors"]
)
def test_every_dashboard_page_hands_its_scripts_the_badges(client, admin_user, name):
    client.force_login(admin_user)
    content = client.get(reverse(name)).content.decode()
    start = content.index('<script id="dashboard-config" type="application/json">')
    body = content[content.index(">", start) + 1 : content.index("</script>", start)]
    assert json.loads(body)["badges"] == badges_config()


@pytest.mark.django_db
def test_session_detail_status_panel_colours_each_status(client, agent_user):
    session = ChatSessionFactory(
        completion_status="complete",
        archive_status="archived",
        qa_status="issue",
        delivery_state="paused",
    )
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert '<span class="badge text-bg-success">Complete</span>' in content
    assert '<span class="badge text-bg-secondary" id="archive-badge">Archived</span>' in content
    assert '<span class="badge text-bg-warning">Paused (endpoint off)</span>' in content
    assert '<span class="badge text-bg-danger">Issue</span>' in content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "html"),
    [
        ("pending", '<span class="badge text-bg-warning">Pending</span>'),
        ("sending", '<span class="badge text-bg-warning">Sending</span>'),
        ("delivered", '<span class="badge text-bg-success">Delivered</span>'),
        ("failed", '<span class="badge text-bg-danger">Failed</span>'),
        ("cancelled", '<span class="badge text-bg-secondary">Cancelled</span>'),
    ],
)
def test_session_detail_colours_each_outbox_row_by_its_status(client, agent_user, status, html):
    from sessions_app.models import Delivery, WebhookEndpoint
    from sessions_app.services import lead_capture

    WebhookEndpoint.objects.create(name="n8n", url="https://n8n.example.com/hook")
    session = ChatSessionFactory()
    lead_capture(session=session, name="Dana", email="dana@example.com")
    Delivery.objects.filter(session=session).update(status=status)
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert html in content


def test_the_console_labels_its_badges_from_the_table():
    assert qa_badge("issue") == '<span class="qa-badge qa-badge--issue">Issue</span>'
    assert state_badge("delivery", "paused") == (
        '<span class="qa-state qa-state--delivery-paused">Paused (endpoint off)</span>'
    )
    assert state_badge("completion", "in_progress") == (
        '<span class="qa-state qa-state--completion-in_progress">In progress</span>'
    )
    assert qa_badge("<b>") == '<span class="qa-badge qa-badge--&lt;b&gt;">&lt;b&gt;</span>'
