"""Can the widget show on this page, and if not, what exactly should the site owner fix?

Asked by the embed script before it draws the launcher (`SiteAvailabilityView`) and by the frame
page before it renders the chat (`views.widget_page`), so a mistyped key, a page whose origin is
not allowed or a switched-off site never shows a launcher that opens a broken frame. The messages
are written for the site owner (the embed script prints one as a console warning); visitors only
ever see a friendly "not available".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from widget.models import Site
from widget.origins import normalize_origin, origin_of_url, site_origins

ADMIN_SITES = "the admin (Widget > Sites)"


@dataclass(frozen=True)
class Unavailable:
    status: int  # what the API answers with
    code: str  # unknown_key | switched_off | origin_not_allowed | no_origin
    owner_message: str


def page_origin(request: HttpRequest) -> str | None:
    """The origin of the page asking, as the browser states it, or None when nothing says.

    Browsers send Origin on every cross-origin fetch, but not on a same-origin GET (a page of
    this very server embedding the script): then the Referer's origin (sent in full to the same
    origin by default) stands in. "null" (a file:// page, a sandboxed frame) is kept as is.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin
    referrer = request.headers.get("Referer")
    return origin_of_url(referrer) if referrer else None


def _quoted(value: str) -> str:
    # Echoed in a console message: short, one line.
    value = " ".join(value.split())
    return f'"{value[:64]}…"' if len(value) > 64 else f'"{value}"'


def widget_unavailable(
    *, site_key: str, site: Site | None, origin: str | None
) -> Unavailable | None:
    """Why the widget of `site` (found by `site_key`) cannot show on a page of `origin`.

    `origin` None means the client said nothing (not a browser page): only the key and the
    switch are checked. The origin must be one of the site's allowed origins, the same list the
    frame page's CSP frame-ancestors is built from: an origin outside it could not frame the
    chat even if the API let it through.
    """
    if site is None:
        return Unavailable(
            404,
            "unknown_key",
            f"the site key {_quoted(site_key)} is unknown; copy the embed code again from "
            f"{ADMIN_SITES}.",
        )
    if not site.is_active:
        return Unavailable(
            403,
            "switched_off",
            f"the site {_quoted(site.name)} is switched off, so the chat is hidden; tick "
            f'"Is active" for it in {ADMIN_SITES} to show it.',
        )
    if origin is None:
        return None
    normalized = normalize_origin(origin)
    if normalized is None:
        return Unavailable(
            403,
            "no_origin",
            f"this page has no web origin the chat can be allowed for ({_quoted(origin)}: a "
            "file:// page or a sandboxed frame); serve it over http(s) from one of the allowed "
            f"origins of site {_quoted(site.name)}.",
        )
    if normalized not in site_origins(site):
        return Unavailable(
            403,
            "origin_not_allowed",
            f"this page's origin {normalized} is not in the allowed origins of site "
            f"{_quoted(site.name)}; add it in {ADMIN_SITES}.",
        )
    return None
