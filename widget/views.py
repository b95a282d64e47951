"""Pages of the widget: the embed script, the page inside the iframe, the demo landing page."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from widget import selectors
from widget.demo import DEMO_SITE_KEY
from widget.i18n import site_greeting, site_public_title, site_texts
from widget.origins import frame_ancestors, site_origins

EMBED_MAX_AGE = 300  # seconds: a fixed script URL, so keep caches short enough for upgrades


@lru_cache(maxsize=4)
def _embed_bytes(path: str, mtime: float) -> tuple[bytes, bytes]:
    data = Path(path).read_bytes()
    return data, gzip.compress(data, compresslevel=9, mtime=0)


@require_GET
def embed_js(request: HttpRequest) -> HttpResponse:
    """`/widget/embed.js`, at a fixed URL (the line site owners paste never changes)."""
    path = finders.find("widget/embed.js")
    if not path:
        raise Http404("embed.js is missing")
    plain, packed = _embed_bytes(path, Path(path).stat().st_mtime)
    wants_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    response = HttpResponse(
        packed if wants_gzip else plain, content_type="text/javascript; charset=utf-8"
    )
    if wants_gzip:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = f"public, max-age={EMBED_MAX_AGE}"
    # Loaded by other sites' pages by design.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def widget_csp(site) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {frame_ancestors(site)}"
    )


def widget_texts() -> dict[str, str]:
    """The strings widget.js shows, in the active language (`%s` is filled in by the script)."""
    return {
        "placeholder": gettext("Type your message…"),
        "emailPlaceholder": gettext("name@example.com"),
        "emailHint": gettext(
            "That email looks incomplete: it needs a name, an @ and a domain like example.com."
        ),
        "typing": gettext("The assistant is typing"),
        "offline": gettext("You seem to be offline. Your message was not sent; please try again."),
        "failed": gettext("Something went wrong (%s)."),
        "retry": gettext("Connection problem. Your message is kept; trying again in %s s…"),
        "sentAt": gettext("Sent at %s"),
        "dismiss": gettext("Dismiss"),
    }


@require_GET
@xframe_options_exempt  # framing is governed by the per-site CSP frame-ancestors instead
def widget_page(request: HttpRequest, site_key: str) -> HttpResponse:
    """The chat inside the iframe. Only the site's allowed origins may frame it."""
    site = selectors.site_for_key(site_key)
    if site is None or not site.is_active:
        response = render(
            request,
            "widget/unavailable.html",
            status=404,
        )
        response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors *"
        return response
    # Every text in the site's language (widget.i18n), the browser's Accept-Language unread.
    with site_texts(site) as lang:
        title = site_public_title(site)
        config = {
            "siteKey": site.public_key,
            "title": title,
            "greeting": site_greeting(site),
            "color": site.theme_color,
            "lang": lang,
            "api": "/api/widget/sessions/",
            "origins": site_origins(site),
            "pollMs": settings.LIVE_POLL_MS,
            # The launcher's greeting bubble (embed.js), off unless the site sets a delay.
            "bubbleAfter": site.greeting_bubble_seconds or 0,
            "t": widget_texts(),
        }
        response = render(
            request,
            "widget/widget.html",
            {"site": site, "config": config, "title": title, "lang": lang},
        )
    response["Content-Security-Policy"] = widget_csp(site)
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def demo(request: HttpRequest) -> HttpResponse:
    """A realistic landing page that embeds the widget with the one-line snippet."""
    site = selectors.site_for_key(DEMO_SITE_KEY)
    origin = f"{request.scheme}://{request.get_host()}"
    problem = ""
    if site is None:
        problem = "The demo site does not exist yet: run `python manage.py seed_demo`."
    elif not site.is_active:
        problem = "The demo site is switched off in the admin."
    elif origin.lower() not in site_origins(site):
        problem = (
            f"This page's origin ({origin}) is not in the demo site's allowed origins, so the "
            "widget will refuse to load here. Add it in the admin (Widget sites)."
        )
    return render(
        request,
        "widget/demo.html",
        {
            "site_key": DEMO_SITE_KEY,
            "embed_src": request.build_absolute_uri("/widget/embed.js"),
            "problem": problem,
        },
    )
