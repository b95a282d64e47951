"""Template helpers of the dashboard. Stored text is never marked safe here."""

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else "": only such URLs may become links."""
    try:
        scheme = urlsplit(str(value or "")).scheme.lower()
    except ValueError:
        return ""
    return value if scheme in {"http", "https"} else ""


STATUS_STYLES = {
    "in_progress": "info",
    "complete": "success",
    "incomplete": "secondary",
    "active": "primary",
    "archived": "secondary",
    "unchecked": "light",
    "passed": "success",
    "issue": "danger",
    "fixed": "warning",
    "none": "light",
    "pending": "info",
    "delivered": "success",
    "failed": "danger",
    "paused": "warning",
    "disabled": "secondary",
}


@register.filter
def status_style(value: str) -> str:
    return STATUS_STYLES.get(str(value), "secondary")
