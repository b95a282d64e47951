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
from widget.availability import Unavailable, widget_unavailable
from widget.demo import DEMO_SITE_KEY
from widget.i18n import site_greeting, site_public_title, site_texts
from widget.origins import frame_ancestors, origin_of_url, own_origins, site_origins
from widget.services import site_greeting_metadata

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


def _framing_origin(request: HttpRequest) -> str | None:
    """The origin of the page framing this one, when the browser says so; None otherwise.

    A frame's request carries `Sec-Fetch-Dest: iframe` and the parent page in its Referer (its
    origin at least, under the default referrer policy). Only a cross-site frame is checked:
    the CSP frame-ancestors stays the real guard, this only lets a wrongly placed frame show a
    friendly page instead of the browser's broken-frame one.
    """
    if request.headers.get("Sec-Fetch-Dest") != "iframe":
        return None
    parent = origin_of_url(request.headers.get("Referer", ""))
    if parent is None or parent in own_origins(request):
        return None
    return parent


def _unavailable_page(request: HttpRequest, problem: Unavailable) -> HttpResponse:
    response = render(
        request,
        "widget/unavailable.html",
        {"owner_message": problem.owner_message},
        status=problem.status,
    )
    # Framable anywhere: it shows nothing of the site and offers nothing to click.
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors *"
    )
    response["Cache-Control"] = "no-cache"
    return response


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
    problem = widget_unavailable(site_key=site_key, site=site, origin=_framing_origin(request))
    if problem is not None:
        return _unavailable_page(request, problem)
    assert site is not None  # widget_unavailable refuses a missing site
    # Every text in the site's language (widget.i18n), the browser's Accept-Language unread.
    with site_texts(site) as lang:
        title = site_public_title(site)
        config = {
            "siteKey": site.public_key,
            "title": title,
            "greeting": site_greeting(site),
            # Shown with the greeting before any session exists (the first message starts one).
            "quickReplies": site_greeting_metadata(site)["quick_replies"],
            "color": site.theme_color,
            "lang": lang,
            "api": "/api/widget/sessions/",
            "openings": "/api/widget/openings/",
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
