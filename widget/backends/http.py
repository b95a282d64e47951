"""One HTTP POST under the reply's time budget, shared by the network backends.

The budget is a wall-clock deadline for the whole reply: `leadchat.outbound.post` cuts the
socket at the deadline whatever the peer does (a trickled status line, headers or body, a peer
that never reads), and refuses blocked addresses (link-local, cloud metadata; private and
loopback unless OUTBOUND_ALLOW_PRIVATE_NETWORKS). Connect errors (nothing was sent) are retried
once when time remains; nothing else is retried, because a POST that reached the peer may
already have run the workflow.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings

from leadchat import outbound
from widget.backends.base import BackendError

MAX_RESPONSE_BYTES = 1_000_000
# What an automation error keeps of a backend's answer: enough to diagnose, never a megabyte
# of someone's transcript. Shown to admins only (sessions_app.api.serializers, qa/admin/errors).
ERROR_BODY_BYTES = 2048


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    what: str,
) -> tuple[Any, int]:
    """POST `payload`; return (decoded JSON, status) or raise BackendError."""
    body, status = post_for_body(url, payload, deadline=deadline, headers=headers, what=what)
    return json_body(body, status=status, what=what), status


def json_body(body: bytes, *, status: int, what: str) -> Any:
    """`body` decoded as one JSON document, or a permanent BackendError saying it is not."""
    try:
        return json.loads(body)
    except ValueError:
        raise BackendError(
            f"{what} answered with malformed JSON.",
            permanent=True,
            status_code=status,
            details=response_details(body),
        ) from None


def post_for_body(
    url: str,
    payload: dict[str, Any],
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    what: str,
) -> tuple[bytes, int]:
    """POST `payload`; return (the answer's raw body, status) of a 2xx, or raise BackendError.

    For a backend whose answer is not always one JSON document (n8n's streaming mode).
    """
    body = json.dumps(payload).encode()
    all_headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        **(headers or {}),
    }
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(what)
        try:
            response = outbound.post(
                url,
                body=body,
                headers=all_headers,
                total=remaining,
                connect=float(settings.WIDGET_AGENT_CONNECT_TIMEOUT),
                keep_bytes=MAX_RESPONSE_BYTES,
                too_large="error",
            )
        except outbound.OutboundError as exc:
            if exc.kind == "connect" and attempts == 1 and deadline - time.monotonic() > 0.05:
                continue
            raise _backend_error(exc, what) from None
        break

    status = response.status_code
    if status >= 400:
        # 408 and 429 say "later"; 5xx is the peer's own trouble; other 4xx mean our settings
        # (URL, key, model name) are wrong and will stay wrong until someone fixes them.
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise BackendError(
            f"{what} answered HTTP {status}.",
            permanent=permanent,
            status_code=status,
            details=response_details(response.body),
        )
    if 300 <= status < 400:
        raise BackendError(
            f"{what} answered a redirect (HTTP {status}), which is not followed: "
            "use the final URL in the site's agent settings.",
            permanent=True,
            status_code=status,
        )
    return response.body, status


def response_details(body: bytes | str) -> dict[str, Any]:
    """The backend's own words for an automation error, capped (admins only see them)."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    details: dict[str, Any] = {
        "response_body": raw[:ERROR_BODY_BYTES].decode("utf-8", "replace"),
    }
    if len(raw) > ERROR_BODY_BYTES:
        details["response_body_truncated"] = True
    return details


def _backend_error(exc: outbound.OutboundError, what: str) -> BackendError:
    if exc.kind == "timeout":
        return _timeout(what)
    if exc.kind == "blocked":
        return BackendError(f"{what} URL is not allowed: {exc}", permanent=True)
    if exc.kind == "invalid_url":
        return BackendError(f"{what} URL is not valid: {exc}", permanent=True)
    if exc.kind == "too_large":
        return BackendError(
            f"{what} answer is larger than 1 MB.", permanent=True, status_code=exc.status_code
        )
    if exc.kind == "connect":
        return BackendError(f"{what} could not be reached: {_short(exc)}", permanent=False)
    return BackendError(f"{what} request failed: {_short(exc)}", permanent=False)


def _timeout(what: str) -> BackendError:
    return BackendError(f"{what} did not answer within the time budget.", permanent=False)


def _short(exc: Exception) -> str:
    return str(exc)[:300]
