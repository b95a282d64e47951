"""Template helpers of the dashboard. Stored text is never marked safe here."""

from django import template

from leadchat.http_urls import is_http_url
from sessions_app.badges import badge

register = template.Library()


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else "": only such URLs may become links."""
    return value if is_http_url(str(value or "")) else ""


@register.filter
def status_style(value: str, kind: str) -> str:
    """Bootstrap's colour of a status badge: `{{ session.qa_status|status_style:"qa" }}`."""
    return badge(kind, value).style


@register.filter
def status_label(value: str, kind: str) -> str:
    """The label of a status badge: `{{ lead.latest.qa_status|status_label:"qa" }}`."""
    return badge(kind, value).label
