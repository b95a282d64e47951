"""The Messenger webhook: Meta's challenge, the signature, and the raw events into the inbox."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.models import AutomationError, Channel, ChatMessage, ChatSession
from widget.channels.messenger.models import InboxKind, InboxStatus, MessengerInboxEvent
from widget.channels.messenger.tests.conftest import (
    APP_SECRET,
    PAGE_ID,
    PAGE_TOKEN,
    PSID,
    VERIFY_TOKEN,
    WEBHOOK,
    attachment_event,
    delivery_event,
    echo_event,
    messaging,
    postback_event,
    quick_reply_event,
    read_event,
    run_worker,
    text_event,
    webhook_body,
)

pytestmark = pytest.mark.django_db


def verify(client, token=VERIFY_TOKEN, mode="subscribe", challenge="1158201444"):
    return client.get(
        WEBHOOK, {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
    )


def test_verification_answers_the_challenge_as_plain_text(client):
    response = verify(client)
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "token,mode", [("wrong", "subscribe"), ("", "subscribe"), (VERIFY_TOKEN, "unsubscribe")]
)
def test_verification_refuses_a_wrong_token_or_mode(client, token, mode):
    response = verify(client, token=token, mode=mode)
    assert response.status_code == 403
    assert b"verify_token" in response.content


def test_verification_refused_while_no_verify_token_is_set(client, settings):
    settings.MESSENGER_VERIFY_TOKEN = ""
    assert verify(client, token="").status_code == 403


def test_webhook_closed_while_the_app_secret_is_unset(client, settings, post_webhook, page_site):
    settings.MESSENGER_APP_SECRET = ""
    response = post_webhook(webhook_body(text_event("hi")), secret="anything")
    assert response.status_code == 503
    assert b"MESSENGER_APP_SECRET" in response.content
    assert verify(client).status_code == 503
    assert not MessengerInboxEvent.objects.exists()


def test_text_message_is_stored_raw_and_answered_at_once(post_webhook, page_site):
    event = text_event("Hello, do you ship to Lisbon?", mid="m_abc123")
    response = post_webhook(webhook_body(event))
    assert response.status_code == 200
    assert response.content == b"EVENT_RECEIVED"
    row = MessengerInboxEvent.objects.get()
    assert (row.mid, row.page_id, row.psid, row.kind, row.status) == (
        "m_abc123",
        PAGE_ID,
        PSID,
        InboxKind.TEXT,
        InboxStatus.PENDING,
    )
    assert row.payload == event
    assert row.event_at is not None
    # Nothing slow in the request: no site lookup (the worker routes the event by its page id),
    # no session, no message, no agent call yet.
    assert row.site is None
    assert not ChatSession.objects.exists()
    assert not ChatMessage.objects.exists()


@pytest.mark.parametrize(
    "secret,signature",
    [
        ("wrong-secret", None),  # signed with another secret
        (APP_SECRET, ""),  # no header
        (APP_SECRET, "sha1=0123"),  # not sha256=
        (APP_SECRET, "sha256=" + "0" * 64),
        (APP_SECRET, "sha256=zz"),
    ],
)
def test_missing_or_wrong_signature_is_403_and_stores_nothing(
    post_webhook, page_site, secret, signature
):
    response = post_webhook(webhook_body(text_event("hi")), secret=secret, signature=signature)
    assert response.status_code == 403
    assert b"X-Hub-Signature-256" in response.content
    assert not MessengerInboxEvent.objects.exists()


def test_signature_is_over_the_raw_bytes_not_the_parsed_json(post_webhook, page_site):
    # Same JSON, different bytes (spacing): the signature of one does not fit the other.
    raw = json.dumps(webhook_body(text_event("hi")), indent=2).encode()
    from widget.channels.messenger.intake import sign

    compact = json.dumps(json.loads(raw)).encode()
    assert post_webhook(raw, signature=sign(compact, APP_SECRET)).status_code == 403
    assert post_webhook(raw).status_code == 200


@pytest.mark.parametrize(
    "raw,expected",
    [
        (b"{not json", b"Malformed JSON"),
        (b"[" * 100 + b"]" * 100, b"deeper"),
        (b'{"object": "page", "entry": [{"id": "\\ud800"}]}', b"Malformed JSON"),
        (b'{"object": "instagram", "entry": []}', b"Not a Messenger webhook"),
        (b'{"object": "page"}', b"Not a Messenger webhook"),
        (b'"page"', b"Not a Messenger webhook"),
    ],
)
def test_malformed_bodies_are_400_with_a_message(post_webhook, page_site, raw, expected):
    response = post_webhook(raw)
    assert response.status_code == 400
    assert expected in response.content
    assert not MessengerInboxEvent.objects.exists()


def test_body_over_the_limit_is_413(post_webhook, page_site, settings):
    settings.MESSENGER_MAX_BODY_BYTES = 1000
    response = post_webhook(webhook_body(text_event("x" * 2000)))
    assert response.status_code == 413
    assert not MessengerInboxEvent.objects.exists()


def test_other_methods_are_405(client):
    assert client.put(WEBHOOK).status_code == 405


def test_replayed_mid_is_stored_once(post_webhook, page_site):
    event = text_event("hello", mid="m_replayed")
    assert post_webhook(webhook_body(event)).status_code == 200
    # Meta retries a webhook it got no 200 for; and a batch may carry a message twice.
    assert post_webhook(webhook_body(event, event)).status_code == 200
    assert MessengerInboxEvent.objects.filter(mid="m_replayed").count() == 1


def test_every_documented_kind_is_stored_with_its_kind(post_webhook, page_site):
    events = [
        text_event("plain text"),
        quick_reply_event("Pricing", "PRICING"),
        postback_event(),
        attachment_event(),
        echo_event("answered from the inbox"),
        delivery_event(),
        read_event(),
        messaging({"reaction": {"mid": "m_x", "action": "react", "emoji": "👍"}}),
    ]
    assert post_webhook(webhook_body(*events)).status_code == 200
    rows = {row.kind: row for row in MessengerInboxEvent.objects.all()}
    assert set(rows) == {
        InboxKind.TEXT,
        InboxKind.QUICK_REPLY,
        InboxKind.POSTBACK,
        InboxKind.ATTACHMENT,
        InboxKind.ECHO,
        InboxKind.DELIVERY,
        InboxKind.READ,
        InboxKind.UNKNOWN,
    }
    pending = {k for k, row in rows.items() if row.status == InboxStatus.PENDING}
    assert pending == {
        InboxKind.TEXT,
        InboxKind.QUICK_REPLY,
        InboxKind.POSTBACK,
        InboxKind.ATTACHMENT,
        InboxKind.ECHO,
    }
    # Receipts and unknown kinds are stored and skipped, never processed.
    for kind in (InboxKind.DELIVERY, InboxKind.READ, InboxKind.UNKNOWN):
        assert rows[kind].status == InboxStatus.SKIPPED
    # The echo's person is its recipient (the page sent it).
    assert rows[InboxKind.ECHO].psid == PSID


def test_receipts_without_a_mid_are_stored_once_on_a_retry(post_webhook, page_site):
    body = webhook_body(delivery_event(), read_event())
    post_webhook(body)
    post_webhook(body)
    assert MessengerInboxEvent.objects.count() == 2


def test_a_batch_of_several_entries_and_pages_is_stored_in_one_go(post_webhook, page_site, graph):
    from widget.tests.factories import SiteFactory

    other = SiteFactory(messenger_page_id="9988776655", messenger_page_token=PAGE_TOKEN)
    body = {
        "object": "page",
        "entry": [
            {"id": PAGE_ID, "time": 1, "messaging": [text_event("one"), text_event("two")]},
            {
                "id": "9988776655",
                "time": 2,
                "messaging": [text_event("three", page_id="9988776655", psid="7001112223")],
            },
        ],
    }
    with CaptureQueriesContext(connection) as queries:
        assert post_webhook(body).status_code == 200
    # One statement for the whole batch: no site lookup in the request.
    assert [q["sql"].split()[0] for q in queries] == ["INSERT"]
    rows = MessengerInboxEvent.objects.order_by("id")
    assert list(rows.values_list("page_id", "kind", "status")) == [
        (PAGE_ID, InboxKind.TEXT, InboxStatus.PENDING),
        (PAGE_ID, InboxKind.TEXT, InboxStatus.PENDING),
        ("9988776655", InboxKind.TEXT, InboxStatus.PENDING),
    ]
    # The worker routes each event to the site of its page, as it handles it.
    while run_worker():
        pass
    assert list(rows.values_list("site", "status")) == [
        (page_site.pk, InboxStatus.DONE),
        (page_site.pk, InboxStatus.DONE),
        (other.pk, InboxStatus.DONE),
    ]
    assert ChatSession.objects.filter(site=other, channel=Channel.MESSENGER).count() == 1


def test_unknown_page_is_200_with_one_automation_error_per_page(post_webhook, page_site):
    for _ in range(3):
        response = post_webhook(webhook_body(text_event("hi"), page_id="5550001"))
        assert response.status_code == 200  # Meta must not retry
    post_webhook(webhook_body(text_event("hi"), page_id="5550002"))
    # Stored (nothing Meta sent is lost); the worker finds no site for them and skips them.
    while run_worker():
        pass
    errors = AutomationError.objects.filter(source=AutomationError.Source.MESSENGER)
    assert errors.count() == 2
    assert "5550001" in errors.get(details__page_id="5550001").message
    assert "Messenger section" in errors.first().message
    skipped = MessengerInboxEvent.objects.filter(page_id="5550001")
    assert skipped.count() == 3
    assert set(skipped.values_list("status", flat=True)) == {InboxStatus.SKIPPED}
    assert "No site has Facebook page id '5550001'" in skipped.first().last_error
    assert not ChatSession.objects.exists()


def test_events_of_a_page_connected_after_they_came_are_answered(post_webhook, graph):
    from widget.tests.factories import SiteFactory

    post_webhook(webhook_body(text_event("hi, anyone there?")))
    site = SiteFactory(messenger_page_id=PAGE_ID, messenger_page_token=PAGE_TOKEN)
    run_worker()
    row = MessengerInboxEvent.objects.get()
    assert (row.site, row.status) == (site, InboxStatus.DONE)
    assert graph.texts  # answered through the Send API


def test_events_of_a_switched_off_site_are_stored_and_skipped(post_webhook, page_site, graph):
    page_site.is_active = False
    page_site.save()
    post_webhook(webhook_body(text_event("hi")))
    run_worker()
    row = MessengerInboxEvent.objects.get()
    assert row.status == InboxStatus.SKIPPED
    assert "switched off" in row.last_error
    assert not graph.texts and not ChatSession.objects.exists()


def test_garbage_inside_a_valid_batch_is_stored_and_skipped(post_webhook, page_site):
    body = {
        "object": "page",
        "entry": [
            {"id": PAGE_ID, "messaging": ["not an event", {"sender": {"id": ["x"]}}]},
            "not an entry",
            {"id": PAGE_ID, "changes": [{"field": "feed"}]},
        ],
    }
    assert post_webhook(body).status_code == 200
    assert set(MessengerInboxEvent.objects.values_list("kind", "status")) == {
        (InboxKind.UNKNOWN, InboxStatus.SKIPPED)
    }


def test_webhook_is_rate_limited_per_ip(post_webhook, page_site, settings):
    settings.MESSENGER_REQUESTS_PER_IP_PER_MINUTE = 2
    body = webhook_body(text_event("hi"))
    assert [post_webhook(body).status_code for _ in range(3)] == [200, 200, 429]


def test_webhook_needs_no_csrf_token(page_site):
    from django.test import Client

    from widget.channels.messenger.intake import sign

    strict = Client(enforce_csrf_checks=True)
    raw = json.dumps(webhook_body(text_event("hi"))).encode()
    response = strict.post(
        WEBHOOK,
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(raw, APP_SECRET),
    )
    assert response.status_code == 200


def test_a_batch_larger_than_one_insert_is_stored_whole(post_webhook, page_site):
    from widget.channels.messenger.intake import INSERT_CHUNK

    events = [text_event(f"n{i}") for i in range(INSERT_CHUNK * 2 + 7)]
    assert post_webhook(webhook_body(*events)).status_code == 200
    assert MessengerInboxEvent.objects.count() == len(events)
    # In the order they came: the worker answers one person's messages in id order.
    texts = [
        p["message"]["text"]
        for p in MessengerInboxEvent.objects.order_by("id").values_list("payload", flat=True)
    ]
    assert texts == [f"n{i}" for i in range(len(events))]
