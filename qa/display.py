"""Rendering helpers of the console: stored data always escaped (format_html, never mark_safe)."""

from django.utils.html import format_html
from django.utils.safestring import SafeString

from leadchat.http_urls import is_http_url
from sessions_app.badges import badge


def safe_http_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL, else None (never a javascript:/data: link).

    Browsers strip tabs and newlines inside URLs and ignore leading spaces, so
    "java\\tscript:" and " javascript:" must be judged on the cleaned string.
    """
    if not url:
        return None
    cleaned = "".join(ch for ch in url.strip() if ch not in "\t\n\r")
    return cleaned if is_http_url(cleaned) else None


def url_link(url: str | None, *, empty: str = "-") -> SafeString | str:
    """An http(s) URL as a link that opens apart from the console; anything else as plain text."""
    if not url:
        return empty
    safe = safe_http_url(url)
    if safe is None:
        return format_html('<span class="qa-unsafe-url">{}</span>', url)
    return format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', safe, url)


def qa_badge(status: str) -> SafeString:
    label = badge("qa", status).label
    return format_html('<span class="qa-badge qa-badge--{}">{}</span>', status, label)


def state_badge(kind: str, value: str) -> SafeString:
    """A session status (kind "completion", "archive" or "delivery"), coloured by console.css."""
    label = badge(kind, value).label
    return format_html('<span class="qa-state qa-state--{}-{}">{}</span>', kind, value, label)
