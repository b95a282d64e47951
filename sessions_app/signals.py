"""Domain signals of chat sessions.

They are sent from services *inside* the transaction that made the change, so a receiver that
writes rows (the webhook outbox) commits or rolls back with it. Receivers that talk to the
outside world must defer with `transaction.on_commit` or, better, write an outbox row. A signal
lives here once something listens to it (archive and trash moves are recorded in
`LifecycleHistory`, not announced).
"""

from django.dispatch import Signal

# kwargs: session. Sent once, when the session first becomes `complete`.
lead_captured = Signal()
# kwargs: session_ids (list[int]), emails (list[str]). Sent inside the transaction of a permanent
# erasure (GDPR) or purge, before the sessions are removed: receivers delete or scrub every row
# of their own that holds these people's data (webhook payloads, email bodies, error details).
sessions_erasing = Signal()
# kwargs: session, message. Sent by `message_add` after a visitor's message is stored (every
# channel, every path). qa listens: a passed session the visitor writes to again goes back to
# the QA queue. Receivers must stay cheap: this is the busiest write in the product.
visitor_turn_added = Signal()
