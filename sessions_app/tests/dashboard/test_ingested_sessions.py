"""An n8n-ingested conversation shows up for agents and QA like any web session: the staff API's
list (and its channel filter), the dashboard's session page, the QA console, the stats and the
exports."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ChatSession
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

KEY = "ingest-key-for-visibility-tests"


@pytest.fixture
def ingested(settings) -> ChatSession:
    settings.INGEST_API_KEY = KEY
    started = (timezone.now() - timedelta(minutes=10)).isoformat()
    turn = {"channel": "whatsapp", "conversation_id": "4915112345678"}
    body: dict[str, Any] = {
        "messages": [
            {**turn, "message_id": "w1", "role": "visitor", "text": "Hi, I'm Ana <b>!</b>"},
            {**turn, "message_id": "w2", "role": "ai", "text": "Hello Ana, your email?"},
            {
                **turn,
                "message_id": "w3",
                "role": "visitor",
                "text": "ana@example.com",
                "lead": {"name": "Ana Silva", "email": "ana@example.com"},
            },
        ]
    }
    body["messages"][0]["created_at"] = started
    response = Client().post(
        "/api/ingest/messages/",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {KEY}",
    )
    assert response.status_code == 201, response.content
    ChatSessionFactory(lead_name="Web Visitor")  # a widget session beside it
    return ChatSession.objects.get(channel="whatsapp")


def test_the_staff_api_lists_it_and_filters_by_its_channel(api, agent_user, ingested):
    client = api(agent_user)
    rows = client.get("/api/sessions/").json()["results"]
    assert str(ingested.public_id) in {row["id"] for row in rows}
    only = client.get("/api/sessions/", {"channel": "whatsapp"}).json()["results"]
    assert [(row["id"], row["channel"], row["site"]) for row in only] == [
        (str(ingested.public_id), "whatsapp", None)
    ]
    assert only[0]["lead"]["email"] == "ana@example.com" and only[0]["has_lead"]
    detail = client.get(f"/api/sessions/{ingested.public_id}/").json()
    assert [(m["role"], m["text"]) for m in detail["messages"]] == [
        ("visitor", "Hi, I'm Ana <b>!</b>"),
        ("ai", "Hello Ana, your email?"),
        ("visitor", "ana@example.com"),
    ]


def test_the_dashboard_session_page_shows_its_channel_badge_and_transcript_as_text(
    client, agent_user, ingested
):
    client.force_login(agent_user)
    response = client.get(reverse("dashboard:session", args=[ingested.public_id]))
    assert response.status_code == 200
    content = response.content.decode()
    assert '<span class="badge text-bg-success">WhatsApp</span>' in content
    assert "Hi, I&#x27;m Ana &lt;b&gt;!&lt;/b&gt;" in content
    assert "<b>!</b>" not in content


def test_the_dashboard_channel_filter_offers_the_new_channels(client, agent_user, ingested):
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:sessions")).content.decode()
    for value, label in [("whatsapp", "WhatsApp"), ("instagram", "Instagram")]:
        assert f'<option value="{value}">{label}</option>' in content
    assert '<option value="telegram">Telegram</option>' in content


def test_the_qa_console_lists_and_opens_it(client, qa_user, ingested):
    client.force_login(qa_user)
    listed = client.get(
        reverse("admin:sessions_app_chatsession_changelist"), {"channel__exact": "whatsapp"}
    )
    assert [s.pk for s in listed.context["cl"].result_list] == [ingested.pk]
    page = client.get(reverse("admin:sessions_app_chatsession_change", args=[ingested.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "<dt>Channel</dt><dd>WhatsApp</dd>" in content
    assert "Hello Ana, your email?" in content
    assert "&lt;b&gt;!&lt;/b&gt;" in content


def test_the_stats_count_it(api, agent_user, ingested):
    today = timezone.localdate().isoformat()
    stats = (
        api(agent_user)
        .get("/api/stats/", {"date_from": today, "date_to": today, "tz": "UTC"})
        .json()
    )
    assert stats["totals"]["sessions"] == 2
    assert stats["totals"]["leads"] == 1
    assert stats["completion"]["complete"] == 1


def test_the_exports_carry_it_with_its_channel_and_transcript(api, agent_user, ingested):
    client = api(agent_user)
    response = client.get(
        reverse("staff-api:export-jsonl"), {"channel": "whatsapp", "transcript": "true"}
    )
    rows = [json.loads(line) for line in response.getvalue().decode().splitlines()]
    assert [(r["id"], r["channel"], r["lead_email"]) for r in rows] == [
        (str(ingested.public_id), "whatsapp", "ana@example.com")
    ]
    assert [m["role"] for m in rows[0]["transcript"]] == ["visitor", "ai", "visitor"]
    csv_body = client.get(reverse("staff-api:export-csv"), {"channel": "whatsapp"})
    assert "whatsapp" in csv_body.getvalue().decode()
