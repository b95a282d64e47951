"""Request helpers shared by every app."""

from django.conf import settings
from django.http import HttpRequest


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
