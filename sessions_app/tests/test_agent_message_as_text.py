"""An agent's message (and the agent's name in the join line) is rendered as text everywhere:
the dashboard's session page, the QA console's transcript, the exports, the widget's API."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from qa.tests.test_xss import PAYLOADS, PageAudit, audit
from sessions_app.services import session_start
from sessions_app.takeover import agent_reply, session_takeover
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


class DashboardAudit(PageAudit):
    """The console's audit, letting through the page's JSON config (json_script escapes it; it
    is data, never run), so that everything else is held to the same checks."""

    def __init__(self) -> None:
        super().__init__()
        self._in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and dict(attrs).get("type") == "application/json":
            self._in_json = True
            return
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_json:
            self._in_json = False
            return
        super().handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._in_json:
            assert "</script" not in data.lower()
            return
        super().handle_data(data)


def dashboard_audit(response) -> DashboardAudit:
    assert response.status_code == 200
    page = DashboardAudit()
    page.feed(response.content.decode())
    page.close()
    assert page.problems == []
    return page


@pytest.fixture
def hostile_reply(make_user):
    site = SiteFactory(name="<i>Acme</i>")
    session, _ = session_start(site=site)
    agent = make_user("agent", username="ana", first_name="<img src=x onerror=alert(1)>")
    session_takeover(session=session, by=agent)
    for payload in PAYLOADS:
        agent_reply(session=session, by=agent, text=payload)
    return session


def test_the_dashboard_session_page_shows_agent_messages_as_text(client, hostile_reply, make_user):
    client.force_login(make_user("agent", username="viewer"))
    page = dashboard_audit(client.get(reverse("dashboard:session", args=[hostile_reply.public_id])))
    text = "".join(page.text)
    for payload in PAYLOADS:
        assert payload in text
    assert "<img src=x onerror=alert(1)> from <i>Acme</i> joined the chat" in text


def test_the_qa_console_transcript_shows_agent_messages_as_text(client, hostile_reply, qa_user):
    client.force_login(qa_user)
    url = reverse("admin:sessions_app_chatsession_change", args=[hostile_reply.pk])
    page = audit(client.get(url))
    text = "".join(page.text)
    for payload in PAYLOADS:
        assert payload in text


def test_exports_carry_agent_messages_as_data(client, hostile_reply, make_user):
    client.force_login(make_user("agent", username="exporter"))
    jsonl = client.get(reverse("staff-api:export-jsonl"), {"transcript": "true"})
    assert jsonl.status_code == 200
    rows = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines() if line]
    texts = [m["text"] for m in rows[0]["transcript"] if m["role"] == "agent"]
    assert texts == PAYLOADS
    csv = client.get(reverse("staff-api:export-csv"), {"transcript": "true"})
    body = b"".join(csv.streaming_content).decode()
    assert "<script>alert('xss-1')</script>" in body  # as a CSV cell, not markup


# The widget: widget/tests/test_takeover_browser.py checks that an agent's "<b>" stays text
# in the visitor's chat (bubble() sets textContent).
