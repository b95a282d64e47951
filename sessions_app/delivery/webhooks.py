"""Lead webhook payloads, Standard Webhooks signing, and the HTTP send itself.

Signing follows https://www.standardwebhooks.com/ through the `standardwebhooks` library:
`webhook-id` (the event id, stable across retries so receivers can deduplicate),
`webhook-timestamp` (the time of this attempt, unix seconds) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the endpoint's `whsec_` secret).
"""

import json
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from leadchat import outbound
from sessions_app.models import ChatSession, WebhookEvent

RESPONSE_BODY_LIMIT = 4096
USER_AGENT = f"leadchat-webhooks/{settings.VERSION}"


def session_link(session: ChatSession) -> str:
    """Absolute link to the session's page on the dashboard."""
    path = reverse("dashboard:session", kwargs={"public_id": session.public_id})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def lead_payload(*, session: ChatSession, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The `lead.captured` body, frozen into the outbox when the lead is captured."""
    site = session.site
    transcript = [
        {"role": role, "text": text, "at": _iso(created_at)}
        for role, text, created_at in session.messages.order_by("created_at", "id").values_list(
            "role", "text", "created_at"
        )
    ]
    return {
        "type": WebhookEvent.LEAD_CAPTURED.value,
        "event_id": event_id,
        "timestamp": _iso(occurred_at),
        "data": {
            "session": {
                "id": str(session.public_id),
                "url": session_link(session),
                "channel": session.channel,
                "started_at": _iso(session.started_at),
                "completion_status": session.completion_status,
                "message_count": session.message_count,
                "page_url": session.page_url,
                "referrer": session.referrer,
                "utm": session.utm,
            },
            "site": {"name": site.name, "key": site.public_key} if site else None,
            "lead": {
                "name": session.lead_name,
                "email": session.lead_email,
                "phone": session.lead_phone,
                "data": session.lead_data,
                "captured_at": _iso(session.lead_captured_at),
                # sessions_app.email_quality: valid, no_mx, disposable, role, unverifiable.
                "email_quality": session.email_quality,
                # The privacy line shown before the email was asked, word for word.
                "consent_text": session.lead_consent_text,
            },
            "transcript": transcript,
        },
    }


def ping_payload(*, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    return {
        "type": WebhookEvent.TEST.value,
        "event_id": event_id,
        "timestamp": _iso(occurred_at),
        "data": {"message": "Test event from leadchat: the endpoint and signature work."},
    }


def serialize(payload: Any) -> str:
    """The exact body that is signed and sent; stable for a given payload."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signature_headers(
    *, secrets: list[str], event_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with each secret (space separated).

    Several secrets during a rotation: a receiver that still has the previous one, or already
    the new one, finds a signature it can verify (the spec allows several in one header).
    """
    at = at or timezone.now()
    signature = " ".join(
        Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body) for secret in secrets
    )
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


@dataclass
class SendResult:
    status_code: int | None
    duration_ms: int
    error: str = ""
    response_body: str = ""
    retry_after: float | None = None  # seconds, from a Retry-After header
    # The receiver refused for good (an email provider's validation error): no retry helps.
    permanent: bool = False
    # The failure was leadchat's own (an exception while handling the row), not the receiver's.
    internal: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None when absent/garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or timezone.now())).total_seconds())


def webhook_post(
    *,
    url: str,
    body: str,
    headers: dict[str, str],
    session: requests.Session | None = None,
) -> SendResult:
    """POST once under a wall-clock deadline, never following redirects, to allowed addresses.

    `leadchat.outbound.post` holds the whole send (connect, request, status line, headers, body)
    to WEBHOOK_TOTAL_TIMEOUT whatever the receiver does, and keeps the first 4 KB of the answer.
    A receiver at a blocked address (link-local, metadata, or private without
    OUTBOUND_ALLOW_PRIVATE_NETWORKS) is a permanent failure: retrying cannot change it.
    """
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = outbound.post(
            url,
            body=body.encode(),
            headers=all_headers,
            total=float(settings.WEBHOOK_TOTAL_TIMEOUT),
            connect=float(settings.WEBHOOK_CONNECT_TIMEOUT),
            keep_bytes=RESPONSE_BODY_LIMIT,
            http=session,
        )
    except outbound.OutboundError as exc:
        if exc.status_code is not None and 200 <= exc.status_code < 300:
            # The status line said the event was accepted; only its body outlasted the
            # deadline and was cut. Delivered, as before: the receiver has the event.
            return SendResult(exc.status_code, exc.duration_ms)
        prefix = {
            "timeout": "Timed out",
            "blocked": "Blocked",
            "connect": "Connection failed",
            "failed": "Connection failed",
            "invalid_url": "Request failed",
        }.get(exc.kind, "Request failed")
        return SendResult(
            exc.status_code, exc.duration_ms, f"{prefix}: {_short(exc)}", permanent=exc.permanent
        )

    code = response.status_code
    error = ""
    if 300 <= code < 400:
        error = f"Redirect to {response.headers.get('Location', '?')[:300]} not followed."
    elif not 200 <= code < 300:
        error = f"HTTP {code}"
    return SendResult(
        status_code=code,
        duration_ms=response.duration_ms,
        error=error,
        response_body=response.body.decode("utf-8", errors="replace"),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _short(exc: Exception) -> str:
    return str(exc)[:500]
