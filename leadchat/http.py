"""Request helpers shared by every app."""

from django.conf import settings
from django.http import HttpRequest
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
