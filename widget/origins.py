"""Which web origins may frame the widget and call its API.

Used in three places that must agree: the widget page's CSP `frame-ancestors`, the API's Origin
check, and CORS (django-cors-headers asks `cors_allows_request` through its signal).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest

from leadchat.cache_guard import cache_call
from leadchat.http_urls import is_http_url

logger = logging.getLogger(__name__)

# scheme://host[:port], nothing else: these strings go into a CSP header, so a value such as
# "https://a.com; script-src *" must never get through.
ORIGIN_RE = re.compile(
    r"^https?://(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::\d{1,5})?$"
)


def normalize_origin(value: str) -> str | None:
    """`value` as a canonical origin (lowercase, no trailing slash), or None when it is not one."""
    candidate = value.strip().rstrip("/").lower()
    return candidate if ORIGIN_RE.match(candidate) else None


@functools.lru_cache(maxsize=256)
def origin_of_url(url: str) -> str | None:
    # Cached: asked twice per widget request (CORS, then the Origin check) for the same two
    # strings (PUBLIC_BASE_URL, this server's scheme and host); a pure function of `url`.
    if not is_http_url(url):
        return None
    parts = urlsplit(url)
    return normalize_origin(f"{parts.scheme}://{parts.hostname or ''}" + _port(parts))


def _port(parts) -> str:
    try:
        port = parts.port
    except ValueError:
        return ":invalid"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f":{port}" if port and port != default else ""


def site_origins(site) -> list[str]:
    """The site's allowed origins that are well formed (bad entries are ignored, not trusted)."""
    origins = site.allowed_origins if isinstance(site.allowed_origins, list) else []
    return [o for o in (normalize_origin(str(v)) for v in origins) if o]


def own_origins(request: HttpRequest) -> set[str]:
    """This server's origins: the widget page (inside the iframe) calls the API from here."""
    found = {origin_of_url(settings.PUBLIC_BASE_URL)}
    # DisallowedHost: then only PUBLIC_BASE_URL counts.
    with contextlib.suppress(DisallowedHost):
        found.add(origin_of_url(f"{request.scheme}://{request.get_host()}"))
    return {o for o in found if o}


def request_origin_allowed(request: HttpRequest, site) -> bool:
    """May a request with this Origin header act for `site`?

    A missing Origin is allowed: browsers send it on every cross-origin request and on every
    same-origin POST, so its absence means a non-browser client, which could forge any Origin
    anyway; for those the site key and the visitor token are the protection.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    normalized = normalize_origin(origin)
    if normalized is None:  # "null" (sandboxed frames, file://) and garbage
        return False
    return normalized in own_origins(request) or normalized in site_origins(site)


def cors_allows_request(sender, request: HttpRequest, **kwargs) -> bool:
    """django-cors-headers' per-request hook: open CORS only to an active site's origins.

    The preflight does not carry the site key, so it is answered for any active site's origin;
    the real request is then checked against its own site (request_origin_allowed).
    """
    if not request.path.startswith("/api/widget/"):
        return False
    origin = normalize_origin(request.headers.get("Origin", ""))
    if origin is None or origin in own_origins(request):
        return False
    return origin in active_site_origins()


# Asked on every cross-origin widget request, while site settings change rarely. Saving or
# deleting a site clears the entry (widget.apps): at once in this process, and in every process
# when CACHE_URL names a shared cache. With the per-process default cache, another gunicorn
# worker may answer a preflight from its copy for up to this many seconds. Only CORS uses it:
# the API checks each request's Origin against its own site, read fresh (request_origin_allowed).
ACTIVE_ORIGINS_CACHE_KEY = "widget:active-site-origins"
ACTIVE_ORIGINS_TTL = 30


def active_site_origins() -> frozenset[str]:
    """The well-formed allowed origins of every active site.

    Without the cache (an outage) they come from the database on every call; without the
    database, no origin is opened (the API would answer 503 anyway).
    """
    from widget.models import Site

    origins = cache_call("origins-read", lambda: cache.get(ACTIVE_ORIGINS_CACHE_KEY), None)
    if origins is None:
        try:
            rows = list(
                Site.objects.filter(is_active=True).values_list("allowed_origins", flat=True)
            )
        except DatabaseError as exc:
            logger.warning("CORS: active site origins unreadable: %s", exc)
            return frozenset()
        origins = frozenset(
            origin
            for values in rows
            if isinstance(values, list)
            for origin in (normalize_origin(str(v)) for v in values)
            if origin
        )
        cache_call(
            "origins-write",
            lambda: cache.set(ACTIVE_ORIGINS_CACHE_KEY, origins, ACTIVE_ORIGINS_TTL),
            None,
        )
    return origins


def active_site_origins_forget(**kwargs) -> None:
    # A site saved while the cache is away must still save: the copy there (if the cache kept
    # one through the outage) is at most ACTIVE_ORIGINS_TTL old.
    cache_call("origins-forget", lambda: cache.delete(ACTIVE_ORIGINS_CACHE_KEY), None)


def frame_ancestors(site) -> str:
    origins = site_origins(site)
    return " ".join(origins) if origins else "'none'"
