"""Domain signals of the QA review flow, sent by `qa.services` inside the transaction."""

from django.dispatch import Signal

# kwargs: session, by (user), note (str). Sent when a session enters `issue`; the notification
# email hangs off it (through the outbox, so it survives a restart).
qa_issue_flagged = Signal()

# kwargs: session, by (user), feedback (str). Sent when a session enters `fixed`, inside the
# move's transaction: QA is told it awaits a re-check (an outbox email), and the replay that
# re-tests the fix (qa.replay) is queued with it.
qa_session_fixed = Signal()
