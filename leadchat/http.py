"""Request helpers shared by every app."""

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac


def client_ip(request: HttpRequest) -> str:
    """The client's address for rate limits and throttles.

    REMOTE_ADDR, or, behind TRUSTED_PROXY_COUNT proxies we run, the address the outermost of
    them appended to X-Forwarded-For. Entries further left are whatever the client sent:
    trusting them would let anyone pick a fresh "IP" per request and step around every limit.
    A header shorter than the proxy chain did not come through it; REMOTE_ADDR is used then.
    """
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= trusted:
            return forwarded[-trusted]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def cache_key_part(kind: str, value: object) -> str:
    """A fixed-length, keyed hash of an identity (client IP, username, session pk) for a cache key.

    Raw addresses and usernames never sit in the cache (whoever can read it, a Redis dump, learns
    nothing), and whatever characters a client sends (spaces, control characters, 10 KB of
    text) cannot break memcached's or Redis's key rules. Keyed with SECRET_KEY (salted_hmac),
    so the hashes cannot be reversed by hashing every IPv4 address. `kind` keeps equal values of
    different kinds apart.
    """
    digest = salted_hmac(f"leadchat.cache-key.{kind}", str(value), algorithm="sha256")
    return digest.hexdigest()[:32]


# --- Request bodies the app refuses before reading them -------------------------------------

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def max_body_bytes(path: str) -> int | None:
    """The largest request body `path` takes (None: no limit)."""
    if path.startswith("/api/widget/"):
        return int(settings.WIDGET_MAX_BODY_BYTES)
    if path.startswith("/channels/messenger/"):
        return int(settings.MESSENGER_MAX_BODY_BYTES)
    if path.startswith("/api/automation/"):
        from sessions_app.api.automation import MAX_BODY_BYTES  # the app's own documented cap

        return MAX_BODY_BYTES
    if path.startswith("/api/ingest/"):
        from sessions_app.api.ingest import MAX_BODY_BYTES as INGEST_MAX_BODY_BYTES

        return INGEST_MAX_BODY_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def body_refusal(
    *, method: str, path: str, content_length: str | None, transfer_encoding: str | None
) -> tuple[int, str] | None:
    """(status, message) when a request must be refused for its body alone, else None.

    - 411: a body sent chunked, without Content-Length. Django reads exactly CONTENT_LENGTH
      bytes (none here), so the view would see an empty body ("field is required"), and a
      server that does not de-chunk would read the chunks as the next request.
    - 413: a declared length over the path's limit (WIDGET_MAX_BODY_BYTES, the automation
      API's 64 KB, the ingest API's 1 MB, MESSENGER_MAX_BODY_BYTES, DATA_UPLOAD_MAX_MEMORY_SIZE
      elsewhere).

    Used by RequestBodyLimitMiddleware to answer, and by gunicorn's pre_request hook
    (gunicorn.conf.py) to close the connection after that answer.
    """
    if transfer_encoding and not content_length and method.upper() in BODY_METHODS:
        return 411, "Send the request body with a Content-Length header (chunked is not taken)."
    try:
        length = int(content_length or 0)
    except ValueError:
        return 400, "The Content-Length header is not a number."
    limit = max_body_bytes(path)
    if limit is not None and length > limit:
        return 413, f"The request body is larger than {limit} bytes ({limit // 1024} KB)."
    return None


class RequestBodyLimitMiddleware:
    """Refuse a request whose body is too large (413) or has no length (411) before anything
    reads it, and close the connection after the answer.

    The body is left unread: keeping the connection open would mean reading (or skipping)
    every byte of it first, or, on a server that does not, reading it as the next request. The
    answer has no Content-Length, which makes Django's own server (runserver, live_server) send
    `Connection: close` and close; gunicorn closes through its pre_request hook
    (gunicorn.conf.py). A WSGI application may not set Connection itself (PEP 3333 forbids
    hop-by-hop headers; wsgiref asserts on them, gunicorn drops them).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = body_refusal(
            method=request.method or "",
            path=request.path,
            content_length=request.META.get("CONTENT_LENGTH"),
            transfer_encoding=request.META.get("HTTP_TRANSFER_ENCODING"),
        )
        if refusal is None:
            return self.get_response(request)
        status, message = refusal
        codes = {411: "length_required", 413: "payload_too_large", 400: "bad_request"}
        if request.path.startswith("/api/"):
            body = json.dumps({"error": message, "code": codes[status]})
            content_type = "application/json"
        else:
            body, content_type = message, "text/plain; charset=utf-8"
        # No Content-Length on purpose (see above): only CommonMiddleware, which runs inside
        # this one, would add it.
        return HttpResponse(body, status=status, content_type=content_type)
