"""What qa listens to. Connected in QaConfig.ready()."""

from django.dispatch import receiver

from qa.models import QAHistory
from qa.signals import qa_issue_flagged
from sessions_app import outbox
from sessions_app.signals import sessions_erasing


@receiver(sessions_erasing, dispatch_uid="qa.erase_history")
def erase_qa_history(sender, session_ids: list[int], emails: list[str], **kwargs) -> None:
    # QA notes quote what the visitor wrote. The rows would go with the sessions (CASCADE), but
    # an erasure must not depend on how the sessions are removed (a raw or batched delete).
    QAHistory.objects.filter(session_id__in=session_ids).delete()


@receiver(qa_issue_flagged, dispatch_uid="qa.email.qa_issue_flagged")
def queue_qa_issue_email(sender: type, *, session, by, note: str = "", **kwargs: object) -> None:
    # Inside the QA transition's transaction: the email is an outbox row that commits with the
    # move to `issue`. The worker sends it later, so a Resend outage never blocks the QA change
    # and a restart loses nothing.
    outbox.qa_issue_email_enqueue(session=session, by=by, note=note or "")
