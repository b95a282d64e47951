"""Meta's webhook on the hot path (leadchat.hotpaths) answers exactly what it answers through
the full middleware stack, for good and bad input: same status, bytes and headers, and the
same rows stored."""

from __future__ import annotations

import json

import pytest

from leadchat.tests.hotpaths_support import assert_same_answer, both_ways
from widget.channels.messenger.intake import sign
from widget.channels.messenger.models import InboxStatus, MessengerInboxEvent
from widget.channels.messenger.tests.conftest import (
    APP_SECRET,
    REFUSED_BODIES,
    VERIFY_TOKEN,
    WEBHOOK,
    text_event,
    webhook_body,
)

pytestmark = pytest.mark.django_db


def poster(raw: bytes, signature: str | None = "sign", **extra):
    def send(client):
        header = sign(raw, APP_SECRET) if signature == "sign" else signature
        headers = {"HTTP_X_HUB_SIGNATURE_256": header} if header else {}
        return client.post(WEBHOOK, raw, content_type="application/json", **headers, **extra)

    return send


def test_an_event_is_stored_and_answered_the_same_both_ways(settings, page_site):
    def send(client):  # a new mid each way: both must store their event
        return poster(json.dumps(webhook_body(text_event("Hi there"))).encode())(client)

    answer = assert_same_answer(settings, send)
    assert (answer.status, answer.body) == (200, b"EVENT_RECEIVED")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert MessengerInboxEvent.objects.filter(status=InboxStatus.PENDING).count() == 2


def test_a_replayed_mid_is_stored_once_whichever_way_it_came(settings, page_site):
    raw = json.dumps(webhook_body(text_event("Hi", mid="m_replayed"))).encode()
    assert_same_answer(settings, poster(raw))
    assert MessengerInboxEvent.objects.filter(mid="m_replayed").count() == 1


@pytest.mark.parametrize(
    ("raw", "signature", "status"),
    REFUSED_BODIES,
)
def test_bad_bodies_and_signatures_are_refused_the_same_both_ways(
    settings, page_site, raw, signature, status
):
    answer = assert_same_answer(settings, poster(raw, signature))
    assert answer.status == status
    assert not MessengerInboxEvent.objects.exists()


def test_an_unknown_page_is_the_same_200_both_ways(settings, page_site):
    raw = json.dumps(webhook_body(text_event("Hi"), page_id="999000999")).encode()
    assert assert_same_answer(settings, poster(raw)).status == 200
    # Stored as any event: the worker finds it belongs to no site.
    assert MessengerInboxEvent.objects.get().status == InboxStatus.PENDING


def test_too_big_and_chunked_bodies_are_refused_the_same_both_ways(settings, page_site):
    settings.MESSENGER_MAX_BODY_BYTES = 1000
    raw = json.dumps(webhook_body(text_event("x" * 2000))).encode()
    assert assert_same_answer(settings, poster(raw)).status == 413
    chunked = assert_same_answer(
        settings,
        lambda client: client.generic(
            "POST",
            WEBHOOK,
            b"",
            content_type="application/json",
            HTTP_TRANSFER_ENCODING="chunked",
            CONTENT_LENGTH="",
        ),
    )
    assert chunked.status == 411
    assert not MessengerInboxEvent.objects.exists()


def test_rate_limited_per_ip_the_same_both_ways_whatever_forwarded_for_says(settings, page_site):
    settings.MESSENGER_REQUESTS_PER_IP_PER_MINUTE = 1
    settings.TRUSTED_PROXY_COUNT = 0
    raw = json.dumps(webhook_body(text_event("Hi"))).encode()

    def twice(client):
        assert poster(raw, HTTP_X_FORWARDED_FOR="203.0.113.1")(client).status_code == 200
        return poster(raw, HTTP_X_FORWARDED_FOR="203.0.113.2")(client)

    answer = assert_same_answer(settings, twice)
    assert answer.status == 429 and int(answer.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (f"?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42", 200),
        ("?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42", 403),
    ],
)
def test_the_verification_challenge_is_answered_the_same_both_ways(
    settings, page_site, query, status
):
    answer = assert_same_answer(settings, lambda client: client.get(WEBHOOK + query))
    assert answer.status == status


def test_other_methods_and_a_closed_webhook_are_answered_the_same_both_ways(settings, page_site):
    assert assert_same_answer(settings, lambda client: client.put(WEBHOOK)).status == 405
    settings.MESSENGER_APP_SECRET = ""
    raw = json.dumps(webhook_body(text_event("Hi"))).encode()
    assert assert_same_answer(settings, poster(raw)).status == 503


def test_the_hot_path_can_be_switched_off(settings, page_site):
    raw = json.dumps(webhook_body(text_event("Hi"))).encode()
    hot, full = both_ways(settings, poster(raw))
    assert hot.lean and not full.lean
