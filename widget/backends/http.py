"""One HTTP POST under the reply's time budget, shared by the network backends.

The budget is a deadline for the whole reply, not a per-read timeout: requests' read timeout
restarts on every byte, so a peer that trickles its answer is also cut off here while reading
the body. Connect errors (nothing was sent) are retried once when time remains; nothing else is
retried, because a POST that reached the peer may already have run the workflow.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from django.conf import settings

from widget.backends.base import BackendError

MAX_RESPONSE_BYTES = 1_000_000
_session = requests.Session()


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    deadline: float,
    headers: dict[str, str] | None = None,
    what: str,
) -> tuple[Any, int]:
    """POST `payload`; return (decoded JSON, status) or raise BackendError."""
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BackendError(f"{what} did not answer within the time budget.", permanent=False)
        connect = min(float(settings.WIDGET_AGENT_CONNECT_TIMEOUT), remaining)
        try:
            response = _session.post(
                url,
                json=payload,
                headers={"Accept": "application/json", **(headers or {})},
                timeout=(connect, remaining),
                stream=True,
                allow_redirects=False,
            )
        except requests.ConnectionError as exc:
            if _is_connect_error(exc) and attempts == 1 and deadline - time.monotonic() > 0.05:
                continue
            raise BackendError(
                f"{what} could not be reached: {_short(exc)}", permanent=False
            ) from None
        except requests.Timeout:
            raise _timeout(what) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise BackendError(f"{what} URL is not valid: {exc}", permanent=True) from None
        except requests.RequestException as exc:
            raise BackendError(f"{what} request failed: {_short(exc)}", permanent=False) from None
        break

    with response:
        body = _read_body(response, deadline=deadline, what=what)
    status = response.status_code
    if status >= 400:
        # 408 and 429 say "later"; 5xx is the peer's own trouble; other 4xx mean our settings
        # (URL, key, model name) are wrong and will stay wrong until someone fixes them.
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise BackendError(
            f"{what} answered HTTP {status}.",
            permanent=permanent,
            status_code=status,
            details={"body": body[:500].decode("utf-8", "replace")},
        )
    try:
        return json.loads(body), status
    except ValueError:
        raise BackendError(
            f"{what} answered with malformed JSON.",
            permanent=True,
            status_code=status,
            details={"body": body[:500].decode("utf-8", "replace")},
        ) from None


def _read_body(response: requests.Response, *, deadline: float, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(16_384):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise BackendError(f"{what} answer is larger than 1 MB.", permanent=True)
            if time.monotonic() > deadline:
                raise _timeout(what)
    except requests.RequestException:
        raise _timeout(what) from None
    return b"".join(chunks)


def _is_connect_error(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return isinstance(exc, requests.ConnectTimeout) or (
        "NewConnectionError" in text or "Connection refused" in text
    )


def _timeout(what: str) -> BackendError:
    return BackendError(f"{what} did not answer within the time budget.", permanent=False)


def _short(exc: Exception) -> str:
    return str(exc)[:300]
