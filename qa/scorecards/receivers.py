"""What qa.scorecards listens to. Connected in QaConfig.ready()."""

from django.dispatch import receiver

from qa.scorecards.models import MessageAnnotation, Scorecard
from sessions_app.signals import sessions_erasing


@receiver(sessions_erasing, dispatch_uid="qa.scorecards.erase")
def erase_scorecards(sender, session_ids: list[int], emails: list[str], **kwargs) -> None:
    # Annotations quote the visitor and the agent; a lead verdict says what was captured. As
    # for QAHistory, the erasure must not depend on how the sessions are then removed.
    MessageAnnotation.objects.filter(session_id__in=session_ids).delete()
    Scorecard.objects.filter(session_id__in=session_ids).delete()
