"""The open widget's poll for new messages, outside DRF (leadchat.hotpaths routes it here).

`GET /api/widget/sessions/{id}/messages/?after=N` comes every LIVE_POLL_MS from every open chat
and nearly always answers "nothing new". Through DRF (its Request, content negotiation, the
throttle and permission classes, the renderer) that answer cost several times the work it
does. This view does the same checks, in the same order, with the same functions as
widget.api.MessagePostView.get, and answers the same bytes:

1. the per-IP poll budget (WidgetPollIPThrottle), before the session is looked up;
2. the session, its site, the Origin and the visitor token (visitor_session_check on
   selectors.session_for_poll);
3. the per-session poll budget (SessionPollThrottle);
4. the cursor (MessagesSinceIn) and the answer (messages_since_body).

Refusals are DRF's exceptions turned into the API's error body by the API's own exception
handler (leadchat.api.exception_handler) and rendered by DRF's JSONRenderer, with the Allow
header DRF adds. widget/tests/test_live_lean.py compares both ways' answers.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer

from leadchat.api import exception_handler
from leadchat.hotpaths import without_health_check
from leadchat.http import client_ip
from widget import selectors
from widget.api import (
    messages_since_body,
    poll_cursor_lookup,
    throttled_error,
    visitor_session_check,
)
from widget.throttling import SessionPollThrottle, WidgetPollIPThrottle

# What DRF's MessagePostView sends in Allow (its methods, HEAD from GET, OPTIONS from APIView).
ALLOW = "GET, POST, HEAD, OPTIONS"
_renderer = JSONRenderer()


def messages_since_lean(request: HttpRequest, session_id: str) -> HttpResponse:
    try:
        body = _poll(request, session_id)
    except APIException as exc:
        answer = exception_handler(exc, {"request": request})
        assert answer is not None  # an APIException always has an answer
        return _json(answer.data, answer.status_code, dict(answer.items()))
    return _json(body, 200, {})


def _poll(request: HttpRequest, session_id: str) -> dict[str, Any]:
    ip_budget = WidgetPollIPThrottle()
    if not ip_budget.allow(client_ip(request)):
        raise throttled_error(ip_budget.wait())
    after = poll_cursor_lookup(request.GET.get("after", "0"))
    found = without_health_check(lambda: selectors.session_for_poll(session_id, after=after))
    session = visitor_session_check(request, found)
    session_budget = SessionPollThrottle()
    if not session_budget.allow(str(session.pk)):
        raise throttled_error(session_budget.wait())
    return messages_since_body(session, request.GET)


def _json(data: Any, status: int, headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(_renderer.render(data), status=status, content_type="application/json")
    for name, value in headers.items():
        if name.lower() != "content-type":
            response[name] = value
    response["Allow"] = ALLOW
    return response
