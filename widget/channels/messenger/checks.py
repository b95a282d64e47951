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
