"""Shared by the delivery commands: naming an endpoint on the command line."""

from django.core.management.base import CommandError

from sessions_app.models import WebhookEndpoint


def endpoint_named(wanted: str) -> WebhookEndpoint:
    """The one endpoint whose id or name is `wanted`, or a one-line CommandError listing them."""
    endpoints = WebhookEndpoint.objects.all()
    match = (
        endpoints.filter(pk=int(wanted)) if wanted.isdigit() else endpoints.none()
    ) or endpoints.filter(name=wanted)
    found = list(match[:2])
    if len(found) != 1:
        known = ", ".join(f"{e.pk}={e.name}" for e in endpoints[:20]) or "none"
        raise CommandError(f"No single endpoint with id or name {wanted!r}. Known: {known}.")
    return found[0]
