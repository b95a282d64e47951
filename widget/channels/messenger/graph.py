"""Meta's Graph API: the Send API sender of Messenger replies, and the admin's connection check.

Every call goes through `leadchat.outbound` (a wall-clock deadline, no redirects, the address
rules). Graph answers `{"error": {"code": ..., "error_subcode": ..., "message": ...}}`; the
codes decide whether a retry can help (Meta's "Send API error codes"):

- permanent, failed at once with an automation error naming the fix: 190 (the page token is
  invalid or expired), 10 / 200 / 230 (a permission is missing, or the message is outside the
  24-hour window), 551 (the person cannot be reached), 100 (a parameter Meta refuses);
- transient, retried on the outbox's schedule: 1, 2 (Meta's own hiccups), 4, 32, 613 (rate
  limits), any 5xx or 429 without a permanent code, timeouts and broken connections.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from leadchat import outbound
from sessions_app.delivery import SendResult, parse_retry_after
from sessions_app.models import Delivery
from widget.agent_secrets import AgentSecretError, agent_secret_resolve
from widget.models import Site

logger = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 4096
REPLY_EVENT = "messenger.reply"
# Meta's limits on a text message and its quick replies.
MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
# Our replies carry this in `message.metadata`; Meta echoes it back, so the webhook can tell
# our own echoes from a person answering in Meta's inbox.
ECHO_MARK = "leadchat:"
# A typing indicator is worth nothing late: a short deadline, never retried.
TYPING_TIMEOUT = 3.0

FIX_EXPIRED_ACCESS = (
    "the page access token is invalid or expired: generate a new one for the page (Meta app "
    "dashboard > Messenger > Access tokens) and paste it in the site's Messenger section"
)
FIX_PERMISSION = (
    "Meta refused the message: the app lacks pages_messaging for this page, or the person's "
    "last message is more than 24 hours old (Meta forbids automated messages after that); "
    "check the app's permissions, and answer older conversations from Meta's inbox"
)
FIX_UNAVAILABLE = (
    "this person cannot be reached on Messenger now (they blocked the page or left "
    "Messenger); nothing to fix here"
)
FIX_PARAMETER = "Meta refused a parameter of the message; see the response body"
PERMANENT_CODES: dict[int, str] = {
    190: FIX_EXPIRED_ACCESS,
    10: FIX_PERMISSION,
    200: FIX_PERMISSION,
    230: FIX_PERMISSION,
    551: FIX_UNAVAILABLE,
    100: FIX_PARAMETER,
}
TRANSIENT_CODES = frozenset({1, 2, 4, 32, 613})


@dataclass
class GraphError:
    code: int | None
    subcode: int | None
    message: str


def graph_error(body: bytes) -> GraphError | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None

    def number(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return GraphError(
        code=number(error.get("code")),
        subcode=number(error.get("error_subcode")),
        message=str(error.get("message") or "")[:500],
    )


def classify(status: int, body: bytes) -> tuple[bool, str]:
    """(permanent, what went wrong and how to fix it) for a Graph answer that is not 2xx."""
    error = graph_error(body)
    code = error.code if error else None
    said = f" Meta said: {error.message}" if error and error.message else ""
    if code in PERMANENT_CODES:
        return True, f"Graph error {code}: {PERMANENT_CODES[code]}.{said}"
    if code in TRANSIENT_CODES:
        return False, f"Graph error {code} (temporary or a rate limit); retried.{said}"
    if status >= 500 or status == 429:
        return False, f"HTTP {status} from the Graph API (temporary); retried.{said}"
    return True, f"HTTP {status} from the Graph API (Graph error {code or '?'}).{said}"


def page_token(site: Site) -> str:
    """The site's page access token, as stored or from an allowed environment variable."""
    return agent_secret_resolve(site.messenger_page_token or "")


def _graph_url(path: str, token: str) -> str:
    return f"{settings.MESSENGER_GRAPH_API_URL}/{path}?access_token={quote(token, safe='')}"


def graph_post(
    *,
    path: str,
    token: str,
    body: dict[str, Any],
    total: float | None = None,
    http: requests.Session | None = None,
) -> SendResult:
    """POST `body` to the Graph API once, classified into a SendResult."""
    try:
        response = outbound.post(
            _graph_url(path, token),
            body=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            total=float(total or settings.WEBHOOK_TOTAL_TIMEOUT),
            connect=float(settings.WEBHOOK_CONNECT_TIMEOUT),
            keep_bytes=RESPONSE_BODY_LIMIT,
            http=http,
        )
    except outbound.OutboundError as exc:
        # The access token is in the URL: never let it into a stored error.
        message = str(exc).replace(quote(token, safe=""), "***").replace(token, "***")
        return SendResult(
            exc.status_code,
            exc.duration_ms,
            f"Graph API: {exc.kind}: {message}"[:1000],
            permanent=exc.permanent,
        )
    text = response.body.decode("utf-8", errors="replace")
    if 200 <= response.status_code < 300:
        return SendResult(response.status_code, response.duration_ms, response_body=text)
    permanent, error = classify(response.status_code, response.body)
    return SendResult(
        status_code=response.status_code,
        duration_ms=response.duration_ms,
        error=error,
        response_body=text,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        permanent=permanent,
    )


def reply_payload(
    *,
    page_id: str,
    psid: str,
    text: str,
    quick_replies: list[str],
    window_ends_at: datetime,
    tag: str = "",
) -> dict[str, Any]:
    """The outbox payload of one reply: the Send API body plus what the sender checks first.

    A `tag` (HUMAN_AGENT, for a person's reply after the 24 hours) makes it a tagged message."""
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    message: dict[str, Any] = {"text": text}
    choices = [str(q) for q in quick_replies if str(q).strip()][:MAX_QUICK_REPLIES]
    if choices:
        message["quick_replies"] = [
            {"content_type": "text", "title": q[:MAX_QUICK_REPLY_TITLE], "payload": q[:1000]}
            for q in choices
        ]
    body: dict[str, Any] = {
        "recipient": {"id": psid},
        "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE",
    }
    if tag:
        body["tag"] = tag
    body["message"] = message
    return {"page_id": page_id, "window_ends_at": window_ends_at.isoformat(), "body": body}


def _site_for(page_id: str) -> Site | None:
    return Site.objects.filter(messenger_page_id=page_id).exclude(messenger_page_id="").first()


def messenger_reply_send(delivery: Delivery, http: requests.Session) -> SendResult:
    """The worker's sender for DeliveryKind.MESSENGER rows: one Send API call."""
    payload = delivery.payload
    ends = parse_datetime(str(payload.get("window_ends_at") or ""))
    if ends is not None and timezone.now() >= ends and (payload.get("body") or {}).get("tag"):
        return SendResult(
            None,
            0,
            "Not sent: outside Meta's 7-day window for a person's reply (the HUMAN_AGENT tag).",
            permanent=True,
        )
    if ends is None or timezone.now() >= ends:
        return SendResult(
            None,
            0,
            "Not sent: outside Meta's 24-hour window (the person's last message is more than "
            "24 hours old; Meta forbids automated messages after that). Answer from Meta's "
            "inbox if needed.",
            permanent=True,
        )
    site = _site_for(str(payload.get("page_id") or ""))
    if site is None:
        return SendResult(
            None,
            0,
            f"No site has Facebook page id {payload.get('page_id')!r} any more; set it in the "
            "site's Messenger section, then redeliver.",
            permanent=True,
        )
    try:
        token = page_token(site)
    except AgentSecretError as exc:
        return SendResult(None, 0, f"Page access token: {exc}", permanent=True)
    if not token:
        return SendResult(
            None,
            0,
            f"Site {site.name!r} has no page access token: paste it in its Messenger section, "
            "then redeliver.",
            permanent=True,
        )
    body = dict(payload["body"])
    # Marked as ours, so its echo is skipped (intake.py); the event id is unique per reply.
    body["message"] = {**body["message"], "metadata": f"{ECHO_MARK}{delivery.event_id}"}
    return graph_post(path="me/messages", token=token, body=body, http=http)


def typing_on(*, site: Site, psid: str) -> None:
    """Show "typing..." while the agent thinks: best effort, at once, never queued or retried
    (a late indicator is noise, and it is no message)."""
    try:
        token = page_token(site)
    except AgentSecretError:
        return
    if not token:
        return
    result = graph_post(
        path="me/messages",
        token=token,
        body={"recipient": {"id": psid}, "sender_action": "typing_on"},
        total=TYPING_TIMEOUT,
    )
    if not result.ok:
        logger.info("Messenger typing_on for site %s: %s", site.pk, result.error)


def connection_check(*, site: Site) -> tuple[bool, str]:
    """The admin's "check connection": ask the Graph API for the page's name with the token."""
    try:
        token = page_token(site)
    except AgentSecretError as exc:
        return False, f"The page access token cannot be read: {exc}"
    if not site.messenger_page_id or not token:
        return False, "Set the Facebook page id and the page access token first."
    url = (
        f"{settings.MESSENGER_GRAPH_API_URL}/{quote(site.messenger_page_id, safe='')}"
        f"?fields=name&access_token={quote(token, safe='')}"
    )
    try:
        response = outbound.post(
            url,
            method="GET",
            body=b"",
            headers={},
            total=float(settings.WEBHOOK_TOTAL_TIMEOUT),
            connect=float(settings.WEBHOOK_CONNECT_TIMEOUT),
            keep_bytes=RESPONSE_BODY_LIMIT,
        )
    except outbound.OutboundError as exc:
        message = str(exc).replace(quote(token, safe=""), "***").replace(token, "***")
        return False, f"The Graph API did not answer: {message}"
    if 200 <= response.status_code < 300:
        try:
            name = json.loads(response.body).get("name")
        except (ValueError, AttributeError):
            name = None
        if name:
            return True, f"Connected to the Facebook page {name!r}."
        return False, "The Graph API answered without the page's name."
    _permanent, error = classify(response.status_code, response.body)
    return False, error
