"""Domain signals of chat sessions.

They are sent from services *inside* the transaction that made the change, so a receiver that
writes rows (the webhook outbox) commits or rolls back with it. Receivers that talk to the
outside world must defer with `transaction.on_commit` or, better, write an outbox row.
"""

from django.dispatch import Signal

# kwargs: session
session_started = Signal()
# kwargs: session, message
message_added = Signal()
# kwargs: session. Sent once, when the session first becomes `complete`.
lead_captured = Signal()
# kwargs: session, by (a user or None), archived (bool)
session_archive_changed = Signal()
# kwargs: session, by, deleted (bool): soft delete or restore
session_trash_changed = Signal()
# kwargs: session_ids (list[int]), emails (list[str]). Sent inside the transaction of a permanent
# erasure (GDPR) or purge, before the sessions are removed: receivers delete or scrub every row
# of their own that holds these people's data (webhook payloads, email bodies, error details).
sessions_erasing = Signal()
