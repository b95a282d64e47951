"""Meta's webhook through the WSGI lane (widget.channels.messenger.lane), called as gunicorn
calls the project's WSGI application (`leadchat.wsgi.application`), against the full stack
(Django's handler, every middleware) for the same request: the same status, bytes and headers,
the same rows, and the lane standing aside wherever Django must answer."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import OperationalError, close_old_connections
from django.test import Client

from leadchat.tests.hotpaths_support import Answer, answer_of
from leadchat.wsgi import application
from widget.channels.messenger import lane as lane_module
from widget.channels.messenger.intake import sign
from widget.channels.messenger.lane import MessengerLane
from widget.channels.messenger.models import InboxStatus, MessengerInboxEvent
from widget.channels.messenger.tests.conftest import (
    APP_SECRET,
    REFUSED_BODIES,
    WEBHOOK,
    text_event,
    webhook_body,
)

pytestmark = pytest.mark.django_db


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps(webhook_body(*events)).encode()


def wsgi_post(raw: bytes, *, signature: str | None = "sign", **extra: str) -> Answer:
    """POST through the lane around Django's WSGI handler, as leadchat.wsgi.application is
    built, with the environ a WSGI server builds."""
    header = sign(raw, APP_SECRET) if signature == "sign" else signature
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": WEBHOOK,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **({"HTTP_X_HUB_SIGNATURE_256": header} if header else {}),
        **extra,
    }
    started: list[tuple[str, list[tuple[str, str]]]] = []
    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # Built afresh, as a server starting now would (middleware reads settings once).
        app = MessengerLane(WSGIHandler())
        result = app(environ, lambda status, headers, exc=None: started.append((status, headers)))
        try:
            content = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    status, headers = started[0]
    return Answer(
        status=int(status.split()[0]),
        body=content,
        headers={name.lower(): value for name, value in headers},
        # Whether the lane answered: with a plain list; Django answers with its HttpResponse.
        lean=isinstance(result, list),
    )


def full_post(settings, raw: bytes, *, signature: str | None = "sign", **extra: str) -> Answer:
    """The same POST through the full stack (test client, hot paths off)."""
    header = sign(raw, APP_SECRET) if signature == "sign" else signature
    meta: dict[str, Any] = {**({"HTTP_X_HUB_SIGNATURE_256": header} if header else {}), **extra}
    settings.LEAN_HOT_PATHS = False
    try:
        response = Client().post(WEBHOOK, raw, content_type="application/json", **meta)
    finally:
        settings.LEAN_HOT_PATHS = True
    return answer_of(response)


def assert_same(settings, raw: bytes, *, by_lane: bool, **kwargs: Any) -> Answer:
    cache.clear()
    ours = wsgi_post(raw, **kwargs)
    cache.clear()
    theirs = full_post(settings, raw, **kwargs)
    assert ours.lean is by_lane
    assert (ours.status, ours.body) == (theirs.status, theirs.body)
    assert ours.headers == theirs.headers
    return ours


def test_a_signed_event_is_stored_and_answered_by_the_lane_as_the_full_stack_would(
    settings, page_site
):
    answer = assert_same(settings, body_of(text_event("Hi there")), by_lane=True)
    assert (answer.status, answer.body) == (200, b"EVENT_RECEIVED")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers
    # The same body both ways: the second is Meta's retry, stored once.
    assert MessengerInboxEvent.objects.filter(status=InboxStatus.PENDING).count() == 1


def test_a_replayed_mid_is_stored_once(page_site):
    raw = body_of(text_event("Hi", mid="m_lane_replayed"))
    assert wsgi_post(raw).status == wsgi_post(raw).status == 200
    assert MessengerInboxEvent.objects.filter(mid="m_lane_replayed").count() == 1


def test_over_https_behind_the_proxy_the_lane_sends_hsts_as_the_full_stack(settings, page_site):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_SSL_REDIRECT = True
    answer = assert_same(
        settings, body_of(text_event("Hi")), by_lane=True, HTTP_X_FORWARDED_PROTO="https"
    )
    assert answer.headers["strict-transport-security"].startswith("max-age=3600; includeSubDomains")
    # Plain HTTP is redirected by Django's SecurityMiddleware: the lane stands aside.
    assert assert_same(settings, body_of(text_event("Hi")), by_lane=False).status == 301


@pytest.mark.parametrize(
    ("raw", "signature", "status"),
    REFUSED_BODIES,
)
def test_refusals_are_the_full_stacks_own(settings, page_site, raw, signature, status):
    assert assert_same(settings, raw, signature=signature, by_lane=False).status == status
    assert not MessengerInboxEvent.objects.exists()


def test_requests_the_lane_leaves_to_django(settings, page_site):
    raw = body_of(text_event("Hi"))
    # A Host the site does not serve.
    assert assert_same(settings, raw, by_lane=False, HTTP_HOST="evil.example").status == 400
    # An Origin: CORS is Django's (django-cors-headers).
    assert (
        assert_same(settings, raw, by_lane=False, HTTP_ORIGIN="https://evil.example").status == 200
    )
    # A body over the limit.
    settings.MESSENGER_MAX_BODY_BYTES = 100
    assert assert_same(settings, body_of(text_event("x" * 200)), by_lane=False).status == 413
    settings.MESSENGER_MAX_BODY_BYTES = 256 * 1024
    # Switched off, or Messenger not set up.
    settings.LEAN_HOT_PATHS = False
    assert wsgi_post(raw).lean is False
    settings.LEAN_HOT_PATHS = True
    settings.MESSENGER_APP_SECRET = ""
    assert assert_same(settings, raw, by_lane=False).status == 503


def test_the_rate_limit_counts_each_post_once_and_the_429_is_djangos(settings, page_site):
    settings.MESSENGER_REQUESTS_PER_IP_PER_MINUTE = 2
    cache.clear()
    # A refused POST counts (as on the full stack), once: the view counts it, not the lane.
    assert wsgi_post(body_of(text_event("Hi")), signature=None).status == 403
    assert wsgi_post(body_of(text_event("Hi"))).lean
    over = wsgi_post(body_of(text_event("Hi")))
    assert (over.status, over.lean) == (429, False)
    assert int(over.headers["retry-after"]) > 0
    assert MessengerInboxEvent.objects.count() == 1


def test_a_database_error_in_the_lane_leaves_the_request_to_the_full_stack(monkeypatch, page_site):
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(lane_module, "inbox_events_store", broken)
    answer = wsgi_post(body_of(text_event("Hi", mid="m_lane_db")))
    # The view, given the body as it came, stored the event: nothing is lost.
    assert (answer.status, answer.body, answer.lean) == (200, b"EVENT_RECEIVED", False)
    assert len(calls) == 1
    assert MessengerInboxEvent.objects.filter(mid="m_lane_db").count() == 1


def test_the_lane_stands_aside_for_middleware_it_was_not_checked_against(
    settings, page_site, caplog
):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    lane = lane_module.MessengerLane(lambda environ, start_response: [])
    with caplog.at_level(logging.WARNING, logger="widget.channels.messenger.lane"):
        assert lane.applies() is False
        assert lane.applies() is False
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "GZipMiddleware" in caplog.records[0].getMessage()


def test_the_shipped_settings_take_the_lane(settings, page_site):
    assert isinstance(application, MessengerLane)
    assert application.applies()
    assert wsgi_post(body_of(text_event("Hi"))).lean


def test_a_urlconf_without_the_webhook_or_a_stack_without_the_hot_paths_has_no_lane(settings):
    settings.ROOT_URLCONF = "bench.plain_urls"  # the bench's plain-Django anchor
    lane = MessengerLane(lambda environ, start_response: [b"django"])
    assert lane.path is None
    assert lane({"PATH_INFO": WEBHOOK, "REQUEST_METHOD": "POST"}, lambda *a: None) == [b"django"]
    settings.ROOT_URLCONF = "leadchat.urls"
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "leadchat.hotpaths.HotPathMiddleware"
    ]
    assert MessengerLane(lambda environ, start_response: []).applies() is False
