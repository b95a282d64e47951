"""What sessions_app listens to. Connected in SessionsAppConfig.ready()."""

import logging

from django.dispatch import receiver

from sessions_app import outbox
from sessions_app.models import ChatSession
from sessions_app.signals import lead_captured, sessions_erasing

logger = logging.getLogger(__name__)


@receiver(lead_captured, dispatch_uid="sessions_app.outbox.lead_captured")
def queue_lead_webhooks(sender: type, *, session: ChatSession, **kwargs: object) -> None:
    # Runs inside lead_capture's transaction: the outbox rows commit with the lead, or not at
    # all. Never on_commit: a crash between the commit and the callback would lose the lead.
    outbox.lead_deliveries_enqueue(session=session)


@receiver(sessions_erasing, dispatch_uid="sessions_app.outbox.sessions_erasing")
def erase_deliveries(
    sender: type, *, session_ids: list[int], emails: list[str], **kwargs: object
) -> None:
    removed = outbox.deliveries_erase(session_ids=session_ids, emails=emails)
    logger.info("Erasure: removed %s outbox row(s) (deliveries and attempts).", removed)
