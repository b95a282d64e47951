"""A Messenger conversation shows up for agents and QA like a web session, with its channel."""

import pytest
from django.urls import reverse

from sessions_app.models import ChatSession, MessageRole
from widget.channels.messenger.tests.conftest import (
    attachment_event,
    echo_event,
    text_event,
    webhook_body,
)
from widget.channels.messenger.tests.test_processing import run_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def messenger_session(post_webhook, page_site, graph):
    post_webhook(webhook_body(text_event("Hello from Messenger")))
    run_worker()
    post_webhook(webhook_body(attachment_event("image"), echo_event("Maria here, from the team")))
    run_worker()
    run_worker()
    return ChatSession.objects.get()


def test_dashboard_session_page_shows_the_channel_badge_attachment_and_echo(
    client, admin_role_user, messenger_session
):
    client.force_login(admin_role_user)
    url = reverse("dashboard:session", kwargs={"public_id": messenger_session.public_id})
    html = client.get(url).content.decode()
    assert 'class="badge text-bg-primary">Messenger</span>' in html
    assert "[Sent 1 attachment(s): image]" in html
    assert "Maria here, from the team" in html
    roles = list(messenger_session.messages.values_list("role", flat=True))
    assert MessageRole.AGENT in roles


def test_staff_api_filters_by_the_messenger_channel(client, admin_role_user, messenger_session):
    client.force_login(admin_role_user)
    found = client.get("/api/sessions/", {"channel": "messenger"}).json()
    assert [row["channel"] for row in found["results"]] == ["messenger"]
    assert client.get("/api/sessions/", {"channel": "web"}).json()["results"] == []


def test_qa_console_lists_the_messenger_session(client, admin_role_user, messenger_session):
    client.force_login(admin_role_user)
    html = client.get("/admin/sessions_app/chatsession/", {"channel__exact": "messenger"}).content
    assert b"Messenger" in html
    assert str(messenger_session.pk).encode() in html


def test_the_export_names_the_channel(client, admin_role_user, messenger_session):
    client.force_login(admin_role_user)
    response = client.get("/api/exports/sessions.csv", {"channel": "messenger"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    import csv
    import io

    (row,) = list(csv.DictReader(io.StringIO(body.decode())))
    assert row["channel"] == "messenger"
