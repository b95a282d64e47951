"""What qa listens to. Connected in QaConfig.ready()."""

from django.dispatch import receiver

from qa.models import QAHistory
from sessions_app.signals import sessions_erasing


@receiver(sessions_erasing, dispatch_uid="qa.erase_history")
def erase_qa_history(sender, session_ids: list[int], emails: list[str], **kwargs) -> None:
    # QA notes quote what the visitor wrote. The rows would go with the sessions (CASCADE), but
    # an erasure must not depend on how the sessions are removed (a raw or batched delete).
    QAHistory.objects.filter(session_id__in=session_ids).delete()
