"""The site's language for everything a visitor reads (issue 16).

Visitors read the widget's texts, the scripted agent's lines and the handoff lines in the language
of the site they are on (`Site.language`), never in the one their browser asks for: a Spanish
landing page answers in Spanish even in an English browser, and a transcript reads the same for
the visitor and for the team. The catalogs are `locale/<code>/LC_MESSAGES/django.po`, committed
with their compiled `.mo` so that no machine needs gettext's tools (see the README, "Languages").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.utils import translation
from django.utils.translation import gettext

if TYPE_CHECKING:
    from widget.models import Site

DEFAULT_LANGUAGE = "en"


def site_language(site: Site | None) -> str:
    from widget.models import SiteLanguage

    code = getattr(site, "language", "") or DEFAULT_LANGUAGE
    return code if code in SiteLanguage.values else DEFAULT_LANGUAGE


@contextmanager
def site_texts(site: Site | None) -> Iterator[str]:
    """Inside it, gettext answers in the site's language; yields the language code."""
    code = site_language(site)
    with translation.override(code):
        yield code


def site_greeting(site: Site) -> str:
    """The greeting as written, or the default one in the active language."""
    return site.greeting.strip() or gettext("Hi! 👋 How can we help you today?")


def launcher_labels() -> dict[str, str]:
    """The embed script's own texts (the launcher and its frame), in the active language: the
    script has none of its own, so the launcher speaks the site's language like the chat."""
    return {
        "open": gettext("Open chat"),
        "close": gettext("Close chat"),
        "unread": gettext("Open chat (%(count)s unread)"),
        "frame": gettext("Chat"),
    }


def site_public_title(site: Site) -> str:
    """The widget's header: the public title, or a neutral one (never the internal name)."""
    return site.public_title.strip() or gettext("Chat with us")
