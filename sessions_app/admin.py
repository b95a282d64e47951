"""sessions_app's admin pages: the delivery admin (endpoints, deliveries and their attempts).

ChatSession and AutomationError are registered by the QA console (qa/admin). Django's admin
autodiscovery imports this module; the pages themselves live with the rest of delivery.
"""

from sessions_app.delivery import admin  # noqa: F401
