"""The widget's poll on the hot path (leadchat.hotpaths -> widget.live) answers exactly what the
full DRF path answers, for good and bad input: same status, bytes and headers."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from leadchat.tests.hotpaths_support import assert_same_answer
from sessions_app.models import ChatSession, MessageRole
from sessions_app.services import message_add
from sessions_app.takeover import agent_reply, session_takeover
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"


@pytest.fixture
def started(client):
    SiteFactory(name="Acme", public_key="acme", allowed_origins=[ORIGIN])
    body = client.post(
        "/api/widget/sessions/",
        {"site_key": "acme"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    session = ChatSession.objects.get(public_id=body["session_id"])
    cursor = max(m["id"] for m in body["messages"])
    headers = {"HTTP_ORIGIN": ORIGIN, "HTTP_X_VISITOR_TOKEN": body["visitor_token"]}
    return session, headers, cursor


def poller(session_id, headers, query="", **extra):
    path = f"/api/widget/sessions/{session_id}/messages/"
    return lambda client: client.generic("GET", path + query, **{**headers, **extra})


def test_an_idle_poll_is_the_same_both_ways_and_comes_with_the_security_headers(settings, started):
    session, headers, cursor = started
    answer = assert_same_answer(settings, poller(session.public_id, headers, f"?after={cursor}"))
    assert answer.status == 200
    assert answer.body == (b'{"messages":[],"cursor":%d,"held":false,"poll_ms":2000}' % cursor)
    # What SecurityMiddleware, CORS, the CSP, X-Frame-Options and NoStore add on the full path.
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "content-security-policy" in answer.headers
    assert answer.headers["x-frame-options"] == "DENY"
    assert "no-store" in answer.headers["cache-control"]
    assert answer.headers["content-type"] == "application/json"


def test_a_poll_with_agent_messages_is_the_same_both_ways(settings, started, make_user):
    session, headers, cursor = started
    ana = make_user("agent", username="ana", first_name="Ana")
    session_takeover(session=session, by=ana)
    agent_reply(session=session, by=ana, text="<b>Hi</b> & welcome")
    message_add(session=session, role=MessageRole.SYSTEM, text="internal note")
    answer = assert_same_answer(settings, poller(session.public_id, headers, f"?after={cursor}"))
    assert b"Ana from Acme joined the chat" in answer.body
    assert b"internal note" not in answer.body
    assert b'"held":true' in answer.body


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"HTTP_X_VISITOR_TOKEN": ""}, 403),
        ({"HTTP_X_VISITOR_TOKEN": "guess"}, 403),
        ({"HTTP_ORIGIN": "https://evil.example.net"}, 403),
        ({"HTTP_ORIGIN": "null"}, 403),
        ({"HTTP_ORIGIN": None}, 200),  # a non-browser client: the token is the protection
    ],
)
def test_bad_origin_or_token_is_refused_the_same_both_ways(settings, started, change, status):
    session, headers, _ = started
    sent = {k: v for k, v in {**headers, **change}.items() if v is not None}
    answer = assert_same_answer(settings, poller(session.public_id, sent))
    assert answer.status == status


@pytest.mark.parametrize(
    "session_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "%00", "x" * 300]
)
def test_unknown_or_malformed_session_is_the_same_404_both_ways(settings, started, session_id):
    _, headers, _ = started
    assert assert_same_answer(settings, poller(session_id, headers)).status == 404


def test_a_switched_off_site_and_a_trashed_session_are_refused_the_same_both_ways(
    settings, started, admin_role_user
):
    from sessions_app.services import session_delete

    session, headers, _ = started
    session.site.is_active = False
    session.site.save()
    assert assert_same_answer(settings, poller(session.public_id, headers)).status == 403
    session.site.is_active = True
    session.site.save()
    session_delete(session=session, by=admin_role_user)
    assert assert_same_answer(settings, poller(session.public_id, headers)).status == 404


@pytest.mark.parametrize(
    "query", ["?after=-1", "?after=abc", f"?after={2**63}", "?after=", "?after=%D9%A3", ""]
)
def test_cursors_good_and_bad_are_answered_the_same_both_ways(settings, started, query):
    session, headers, _ = started
    answer = assert_same_answer(settings, poller(session.public_id, headers, query))
    assert answer.status in {200, 400}


@pytest.mark.parametrize(
    "limit", ["WIDGET_POLLS_PER_IP_PER_MINUTE", "WIDGET_POLLS_PER_SESSION_PER_MINUTE"]
)
def test_a_rate_limited_poll_is_the_same_429_both_ways(settings, started, limit):
    setattr(settings, limit, 0)
    session, headers, _ = started
    answer = assert_same_answer(settings, poller(session.public_id, headers))
    assert answer.status == 429 and int(answer.headers["retry-after"]) > 0


def test_a_forged_forwarded_for_does_not_buy_a_fresh_poll_budget_either_way(settings, started):
    settings.WIDGET_POLLS_PER_IP_PER_MINUTE = 1
    settings.TRUSTED_PROXY_COUNT = 0
    session, headers, _ = started

    def two_polls(client):
        first = client.get(
            f"/api/widget/sessions/{session.public_id}/messages/",
            HTTP_X_FORWARDED_FOR="203.0.113.1",
            **headers,
        )
        assert first.status_code == 200
        return client.get(
            f"/api/widget/sessions/{session.public_id}/messages/",
            HTTP_X_FORWARDED_FOR="203.0.113.2",
            **headers,
        )

    assert assert_same_answer(settings, two_polls).status == 429


def test_a_declared_body_over_the_limit_is_the_same_413_both_ways(settings, started):
    session, headers, _ = started
    too_big = str(settings.WIDGET_MAX_BODY_BYTES + 1)
    send = poller(session.public_id, headers, CONTENT_LENGTH=too_big)
    answer = assert_same_answer(settings, send)
    assert answer.status == 413


def test_an_unreachable_database_is_the_same_json_503_both_ways(settings, started, monkeypatch):
    session, headers, _ = started

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("widget.selectors.session_for_poll", down)
    answer = assert_same_answer(settings, poller(session.public_id, headers))
    assert answer.status == 503 and b"database_unavailable" in answer.body


def test_https_redirect_and_hsts_apply_on_the_hot_path(settings, started):
    session, headers, _ = started
    settings.SECURE_SSL_REDIRECT = True
    redirected = assert_same_answer(settings, poller(session.public_id, headers))
    assert redirected.status == 301
    settings.SECURE_SSL_REDIRECT = False
    settings.SECURE_HSTS_SECONDS = 3600
    secure = assert_same_answer(settings, lambda client: poller(session.public_id, headers)(client))
    assert "strict-transport-security" not in secure.headers  # plain http: no HSTS

    def over_https(client):
        return client.get(
            f"/api/widget/sessions/{session.public_id}/messages/", secure=True, **headers
        )

    assert assert_same_answer(settings, over_https).headers["strict-transport-security"]


def test_a_disallowed_host_is_the_same_400_both_ways(settings, started):
    session, headers, _ = started
    answer = assert_same_answer(settings, poller(session.public_id, headers, HTTP_HOST="evil.test"))
    assert answer.status == 400


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "application/json; indent=4"},
    ],
)
def test_other_formats_are_left_to_drf(settings, started, extra):
    session, headers, _ = started
    assert_same_answer(settings, poller(session.public_id, headers, **extra), lean=False)
    assert_same_answer(settings, poller(session.public_id, headers, "?format=json"), lean=False)


def test_posting_a_message_still_takes_the_full_path(settings, started):
    session, headers, _ = started
    response = assert_same_answer(
        settings,
        lambda client: client.post(
            f"/api/widget/sessions/{session.public_id}/messages/",
            {"text": ""},
            content_type="application/json",
            **headers,
        ),
        lean=False,
    )
    assert response.status == 400


def test_an_idle_poll_on_the_hot_path_is_one_query(settings, started, django_assert_num_queries):
    session, headers, cursor = started
    send = poller(session.public_id, headers, f"?after={cursor}")
    from django.test import Client

    with django_assert_num_queries(1):  # the session, its site, and "anything after the cursor?"
        response = send(Client())
    assert response.status_code == 200 and hasattr(response.wsgi_request, "hot_path_route")
