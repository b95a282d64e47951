"""Facebook Messenger, natively: Meta's webhook in, the Send API out.

- `views.py`: the webhook (`/channels/messenger/webhook/`). GET answers Meta's set-up challenge;
  POST checks X-Hub-Signature-256 and stores the raw events in the inbox (`intake.py`) in one
  transaction, idempotent on the message id, and answers 200 at once. Nothing slow happens in
  the request.
- `processing.py`: a job of the delivery worker (registered in WidgetConfig.ready()). It claims
  inbox events (one sender's in order), finds or starts the sender's session, stores the
  message with `message_add`, asks the site's agent (`widget.services.agent_answer`, the
  widget's own path) and queues the reply as an outbox row of kind `messenger`.
- `graph.py`: the Send API sender of those rows (registered with the worker too), Graph error
  classification, and the admin's "check connection".
"""
