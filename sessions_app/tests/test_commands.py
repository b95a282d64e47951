from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leadchat.testing import command_output
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db


def test_close_idle_sessions_command():
    ChatSessionFactory(last_activity_at=timezone.now() - timedelta(minutes=45))
    ChatSessionFactory()
    assert "Marked 1 idle session(s) incomplete (idle > 30 min)" in command_output(
        "close_idle_sessions"
    )
    assert "Marked 0" in command_output("close_idle_sessions", "--minutes", "60")


def test_close_idle_sessions_rejects_non_positive_minutes():
    with pytest.raises(CommandError, match="positive"):
        call_command("close_idle_sessions", "--minutes", "0")
