"""Template helpers of the dashboard. Stored text is never marked safe here."""

from urllib.parse import urlsplit

from django import template

from sessions_app.badges import badge

register = template.Library()


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else "": only such URLs may become links."""
    try:
        scheme = urlsplit(str(value or "")).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in {"http", "https"} else ""


@register.filter
def status_style(value: str, kind: str) -> str:
    """Bootstrap's colour of a status badge: `{{ session.qa_status|status_style:"qa" }}`."""
    return badge(kind, value).style
