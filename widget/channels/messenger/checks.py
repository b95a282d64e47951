"""System checks of the Messenger settings (run before every command, the worker's included)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

# The worker holds an event from its claim through "typing", the agent's whole time budget and
# two short transactions; a lease shorter than that lets a second worker ask the agent again.
MARGIN_SECONDS = 5


@register()
def messenger_lease_outlasts_an_answer(app_configs: Any, **kwargs: Any) -> list[Error]:
    from widget.channels.messenger.graph import TYPING_TIMEOUT

    needed = settings.WIDGET_AGENT_TIMEOUT + TYPING_TIMEOUT + MARGIN_SECONDS
    if needed > settings.MESSENGER_LEASE_SECONDS:
        return [
            Error(
                f"MESSENGER_LEASE_SECONDS ({settings.MESSENGER_LEASE_SECONDS}) must be at least "
                f"WIDGET_AGENT_TIMEOUT + {TYPING_TIMEOUT:g} + {MARGIN_SECONDS} = {needed:g}: a "
                "shorter lease lets a second worker answer an event still being answered.",
                id="widget.E101",
            )
        ]
    return []


# Meta retries a webhook for up to 36 hours: an event deleted sooner would be stored (and
# answered) again when its retry arrives.
MIN_INBOX_RETENTION_DAYS = 2


@register()
def messenger_inbox_outlives_meta_retries(app_configs: Any, **kwargs: Any) -> list[Error]:
    if settings.MESSENGER_INBOX_RETENTION_DAYS < MIN_INBOX_RETENTION_DAYS:
        return [
            Error(
                f"MESSENGER_INBOX_RETENTION_DAYS ({settings.MESSENGER_INBOX_RETENTION_DAYS}) must "
                f"be at least {MIN_INBOX_RETENTION_DAYS}: Meta retries a webhook for up to 36 "
                "hours, and a retry of a deleted event would be answered again.",
                id="widget.E102",
            )
        ]
    return []
