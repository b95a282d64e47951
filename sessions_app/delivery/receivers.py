"""What delivery listens to. Connected in SessionsAppConfig.ready().

Each receiver runs inside the transaction of the change that sent the signal: the outbox rows
commit with the lead or the QA move, or not at all. Never on_commit: a crash between the commit
and the callback would lose the delivery.
"""

import logging

from django.dispatch import receiver

from qa.signals import qa_issue_flagged, qa_session_fixed
from sessions_app.delivery import outbox
from sessions_app.models import ChatSession
from sessions_app.signals import lead_captured, sessions_erasing

logger = logging.getLogger(__name__)


@receiver(lead_captured, dispatch_uid="sessions_app.delivery.lead_captured")
def queue_lead_webhooks(sender: type, *, session: ChatSession, **kwargs: object) -> None:
    outbox.lead_deliveries_enqueue(session=session)
    # The people on LEAD_NOTIFY_EMAILS, in the same transaction for the same reason.
    outbox.lead_notify_email_enqueue(session=session)


@receiver(qa_issue_flagged, dispatch_uid="sessions_app.delivery.qa_issue_flagged")
def queue_qa_issue_email(sender: type, *, session, by, note: str = "", **kwargs: object) -> None:
    # The worker sends it later, so a Resend outage never blocks the QA change and a restart
    # loses nothing.
    outbox.qa_issue_email_enqueue(session=session, by=by, note=note or "")


@receiver(qa_session_fixed, dispatch_uid="sessions_app.delivery.qa_session_fixed")
def queue_qa_fixed_email(
    sender: type, *, session, by, feedback: str = "", **kwargs: object
) -> None:
    # QA re-checks what a developer fixed: tell them, through the outbox as the issue email.
    outbox.qa_fixed_email_enqueue(session=session, by=by, feedback=feedback or "")


@receiver(sessions_erasing, dispatch_uid="sessions_app.delivery.sessions_erasing")
def erase_deliveries(
    sender: type, *, session_ids: list[int], emails: list[str], **kwargs: object
) -> None:
    removed = outbox.deliveries_erase(session_ids=session_ids, emails=emails)
    logger.info("Erasure: removed %s outbox row(s) (deliveries and attempts).", removed)
