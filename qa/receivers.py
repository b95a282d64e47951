"""What qa listens to. Connected in QaConfig.ready()."""

from django.dispatch import receiver

from qa.models import QAHistory
from sessions_app.models import QAStatus
from sessions_app.signals import sessions_erasing, visitor_turn_added


@receiver(sessions_erasing, dispatch_uid="qa.erase_history")
def erase_qa_history(sender, session_ids: list[int], emails: list[str], **kwargs) -> None:
    # QA notes quote what the visitor wrote. The rows would go with the sessions (CASCADE), but
    # an erasure must not depend on how the sessions are removed (a raw or batched delete).
    QAHistory.objects.filter(session_id__in=session_ids).delete()


@receiver(visitor_turn_added, dispatch_uid="qa.reopen_passed_session")
def reopen_passed_session(sender, *, session, message, **kwargs) -> None:
    # The caller's instance was read for this request (the widget, the ingest, the inbox), so
    # its status is current enough to skip every session that is not passed at no cost; the
    # service locks and checks again.
    if session.qa_status != QAStatus.PASSED:
        return
    from qa.services import qa_reopen_after_new_turns

    qa_reopen_after_new_turns(session=session)
