"""Meta's webhook for Messenger: the set-up challenge (GET) and the events (POST).

Public, signed by Meta instead of a session: CSRF-exempt, no sign-in. Every refusal is a 4xx
with a plain-text message; an event Meta must not send again (an unknown page, a kind we do not
handle) is answered 200, since Meta retries anything else for hours.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from leadchat.hotpaths import without_health_check
from leadchat.http import cache_key_part, client_ip
from leadchat.parsers import MAX_JSON_DEPTH, json_problem
from leadchat.ratelimit import window_hit
from widget.channels.messenger.intake import (
    inbox_events_store,
    signature_valid,
    webhook_shape_problem,
)

TEXT = "text/plain; charset=utf-8"
RECEIVED = "EVENT_RECEIVED"
CLOSED = "Messenger is not set up here: MESSENGER_APP_SECRET is empty."


def _text(message: str, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type=TEXT)
    for name, value in headers.items():
        response[name] = value
    return response


@csrf_exempt
def messenger_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.MESSENGER_APP_SECRET:
        return _text(CLOSED, 503)
    if request.method == "GET":
        return _verify(request)
    if request.method != "POST":
        return _text("Use GET (verification) or POST (events).", 405, Allow="GET, POST")
    throttled = rate_limit_refusal(request)
    if throttled is not None:
        return throttled
    data, refusal = events_parse(
        body=request.body, signature=request.headers.get("X-Hub-Signature-256")
    )
    if refusal is not None:
        return refusal
    # Safe to repeat on a fresh connection: the INSERT skips mids already stored.
    without_health_check(lambda: inbox_events_store(data=data))
    return _text(RECEIVED)


def rate_limit_refusal(request: HttpRequest) -> HttpResponse | None:
    """Count this POST against its client's limit; the 429 once it is over."""
    hits, resets_in = window_hit(
        f"throttle:messenger-ip:{cache_key_part('messenger-ip', client_ip(request))}", 60
    )
    if hits > settings.MESSENGER_REQUESTS_PER_IP_PER_MINUTE:
        return _text("Too many requests.", 429, **{"Retry-After": str(max(1, int(resets_in)))})
    return None


def events_parse(*, body: bytes, signature: str | None) -> tuple[Any, HttpResponse | None]:
    """(the webhook's data, None), or (None, the refusal) for a body that is not signed with the
    app secret, not JSON, or not a Messenger webhook. The view and the WSGI lane
    (widget.channels.messenger.lane) both start with it."""
    if not signature_valid(body=body, header=signature, secret=settings.MESSENGER_APP_SECRET):
        return None, _text(
            "X-Hub-Signature-256 is missing or does not match the body (sha256= HMAC with the "
            "app secret).",
            403,
        )
    try:
        data = json.loads(body)
    except RecursionError:
        return None, _text(f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels.", 400)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _text(f"Malformed JSON: {exc}", 400)
    problem = json_problem(data, allow_nul=False)
    if problem is not None:
        return None, _text(f"Malformed JSON: {problem}", 400)
    problem = webhook_shape_problem(data)
    if problem is not None:
        return None, _text(f"Not a Messenger webhook: {problem}", 400)
    return data, None


def _verify(request: HttpRequest) -> HttpResponse:
    """Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is ours."""
    expected = settings.MESSENGER_VERIFY_TOKEN
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") != "subscribe"
        or not expected
        or not hmac.compare_digest(given.encode(), expected.encode())
    ):
        return _text("hub.mode must be subscribe and hub.verify_token must match.", 403)
    challenge = request.GET.get("hub.challenge", "")
    if not challenge or len(challenge) > 200:
        return _text("hub.challenge is missing or too long.", 400)
    return _text(challenge)
