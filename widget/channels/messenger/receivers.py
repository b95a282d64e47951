"""What the Messenger channel does when sessions are erased (connected in WidgetConfig.ready())."""

from __future__ import annotations

import logging

from widget.channels.messenger.models import MessengerContact, MessengerInboxEvent

logger = logging.getLogger(__name__)


def erase_messenger_rows(
    sender: type, *, session_ids: list[int], emails: list[str], **kwargs: object
) -> None:
    # The raw events hold what the person wrote and their PSID: they go with the session.
    events, _ = MessengerInboxEvent.objects.filter(session_id__in=session_ids).delete()
    contacts, _ = MessengerContact.objects.filter(session_id__in=session_ids).delete()
    logger.info("Erasure: removed %s Messenger event(s) and %s contact(s).", events, contacts)
