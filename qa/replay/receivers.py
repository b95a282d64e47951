"""What qa.replay listens to. Imported in QaConfig.ready()."""

from django.dispatch import receiver

from qa.replay.models import ReplayTrigger
from qa.replay.services import replay_request
from qa.signals import qa_session_fixed


@receiver(qa_session_fixed, dispatch_uid="qa.replay.on_fixed")
def replay_the_fix(sender, session, by, **kwargs) -> None:
    # Inside the move's transaction, never on_commit: a crash between the commit and the
    # callback would leave a fix nobody re-tests.
    replay_request(session=session, by=by, trigger=ReplayTrigger.FIXED)
