"""Handled inbox events are deleted once past MESSENGER_INBOX_RETENTION_DAYS, by the worker.

The raw payloads hold PSIDs and what people wrote (the transcript keeps the messages), and
skipped events (receipts, unknown pages) belong to no session, so no session purge would ever
remove them.
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from sessions_app.delivery import DeliveryWorker
from sessions_app.models import ChatMessage
from widget.channels.messenger import processing
from widget.channels.messenger.models import InboxStatus, MessengerInboxEvent
from widget.channels.messenger.processing import inbox_prune
from widget.channels.messenger.tests.conftest import text_event, webhook_body

pytestmark = pytest.mark.django_db


def receipt(n: int) -> dict:
    return {
        "sender": {"id": "7001"},
        "recipient": {"id": "100200300400"},
        "timestamp": 1_700_000_000_000 + n,
        "read": {"watermark": 1_700_000_000_000 + n},
    }


def age(days: float) -> None:
    """Make every event handled so far look handled `days` ago."""
    MessengerInboxEvent.objects.exclude(processed_at=None).update(
        processed_at=timezone.now() - timedelta(days=days)
    )


def test_handled_events_past_retention_are_deleted_and_open_ones_kept(
    post_webhook, page_site, graph, settings
):
    settings.MESSENGER_INBOX_RETENTION_DAYS = 7
    assert post_webhook(webhook_body(text_event("a quote please"), receipt(1))).status_code == 200
    DeliveryWorker(name="w", close_idle_sessions=False, log=lambda _l: None).run(once=True)
    assert set(MessengerInboxEvent.objects.values_list("status", flat=True)) == {
        InboxStatus.DONE,
        InboxStatus.SKIPPED,
    }
    age(days=8)
    # A newer handled event and one still to be handled stay.
    assert post_webhook(webhook_body(receipt(2), text_event("still waiting"))).status_code == 200

    assert inbox_prune() == 2

    left = dict(MessengerInboxEvent.objects.values_list("payload__timestamp", "status"))
    assert sorted(left.values()) == [InboxStatus.PENDING, InboxStatus.SKIPPED]
    # What the person wrote is still in the transcript.
    assert ChatMessage.objects.filter(text="a quote please").exists()


def test_events_younger_than_retention_stay(post_webhook, page_site, settings):
    settings.MESSENGER_INBOX_RETENTION_DAYS = 7
    assert post_webhook(webhook_body(receipt(1), receipt(2))).status_code == 200
    age(days=6.9)
    assert inbox_prune() == 0
    assert MessengerInboxEvent.objects.count() == 2


def test_prune_works_in_batches(post_webhook, page_site):
    assert post_webhook(webhook_body(*(receipt(n) for n in range(7)))).status_code == 200
    age(days=30)
    assert inbox_prune(batch_size=3) == 7
    assert not MessengerInboxEvent.objects.exists()


def test_the_worker_job_sweeps_when_idle_at_most_every_prune_every(
    post_webhook, page_site, monkeypatch
):
    monkeypatch.setattr(processing, "_pruned_at", None)
    assert post_webhook(webhook_body(receipt(1))).status_code == 200
    age(days=30)
    assert processing.messenger_inbox_run("w", 10) == 0
    assert not MessengerInboxEvent.objects.exists()
    # Right after a sweep the next idle pass does not sweep again.
    assert post_webhook(webhook_body(receipt(2))).status_code == 200
    age(days=30)
    processing.messenger_inbox_run("w", 10)
    assert MessengerInboxEvent.objects.count() == 1


def test_a_retention_shorter_than_metas_retries_fails_the_system_check(settings):
    settings.MESSENGER_INBOX_RETENTION_DAYS = 1
    with pytest.raises(SystemCheckError, match="MESSENGER_INBOX_RETENTION_DAYS"):
        call_command("check")
