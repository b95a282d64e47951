"""`seed_demo`: the demo site and its month of conversations."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leadchat.testing import command_output
from sessions_app.leads import lead_key
from sessions_app.models import (
    ChatMessage,
    ChatSession,
    CompletionStatus,
    MessageRole,
    QAStatus,
)
from widget.demo import DEMO_SITE_KEY
from widget.models import Site

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_a_realistic_spread_once():
    output = command_output("seed_demo", "--sessions", "120")
    assert "Seeded 120 demo sessions" in output
    site = Site.objects.get(public_key=DEMO_SITE_KEY)
    sessions = ChatSession.objects.filter(site=site)
    assert sessions.count() == 120
    statuses = set(sessions.values_list("completion_status", flat=True))
    assert {CompletionStatus.COMPLETE, CompletionStatus.INCOMPLETE} <= statuses
    qa = set(sessions.values_list("qa_status", flat=True))
    assert {QAStatus.UNCHECKED, QAStatus.PASSED} <= qa
    oldest = sessions.order_by("started_at").first().started_at
    assert oldest < timezone.now() - timedelta(days=15)
    # Counters match the transcripts written.
    for session in sessions[:20]:
        assert session.message_count == session.messages.count()
        replies = session.messages.filter(role=MessageRole.AI)
        assert session.ai_replies_timed == replies.count()
        assert session.ai_latency_ms_total == sum(m.metadata["latency_ms"] for m in replies)
    complete = sessions.filter(completion_status=CompletionStatus.COMPLETE).first()
    assert complete.lead_name and "@" in complete.lead_email
    # Every demo lead is a person on the Leads page.
    assert complete.lead_key == lead_key(complete.lead_email)
    assert not sessions.exclude(lead_email="").filter(lead_key="").exists()

    messages_before = ChatMessage.objects.count()
    assert "nothing to do" in command_output("seed_demo")
    assert ChatSession.objects.count() == 120
    assert ChatMessage.objects.count() == messages_before


@pytest.mark.parametrize("args", [["--sessions", "0"], ["--sessions", "-5"], ["--days", "0"]])
def test_seed_demo_rejects_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("seed_demo", *args)


def test_seed_demo_rejects_non_numbers():
    with pytest.raises(CommandError, match="invalid int value"):
        call_command("seed_demo", "--sessions", "lots")


def test_seed_demo_adds_the_served_origin_once():
    command_output("seed_demo", "--sessions", "5", "--origin", "http://127.0.0.1:8123")
    command_output("seed_demo", "--origin", "http://127.0.0.1:8123")
    origins = Site.objects.get(public_key=DEMO_SITE_KEY).allowed_origins
    assert origins.count("http://127.0.0.1:8123") == 1
    assert "http://127.0.0.1:8000" in origins


@pytest.mark.parametrize("origin", ["127.0.0.1:8000", "javascript:alert(1)", "http://x.test/path"])
def test_seed_demo_rejects_malformed_origins(origin):
    with pytest.raises(CommandError, match="is not an origin"):
        call_command("seed_demo", "--origin", origin)


def test_seed_demo_rejects_an_origin_without_a_host():
    # Checking the netloc let "http://:8000" through, an origin no page is ever served from.
    with pytest.raises(CommandError, match="is not an origin"):
        call_command("seed_demo", "--origin", "http://:8000")
