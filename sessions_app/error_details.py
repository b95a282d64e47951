"""Which parts of an automation error's details a staff member may read.

An agent backend's error keeps the start of the backend's own answer (`response_body`, capped by
`widget.backends.http.ERROR_BODY_BYTES`): it may echo the transcript, prompts or the backend's
internals, so only admins see it. Agents (staff API, dashboard) and QA reviewers (the console) see
that it exists, not what it says. Fails closed: without a known admin user the text is hidden.
"""

from __future__ import annotations

from typing import Any

from sessions_app.models import AutomationError

# "body" is the key agent errors used before the cap and the rename.
RAW_RESPONSE_KEYS = ("response_body", "body")
HIDDEN = "(hidden: the backend's answer is shown to admins only)"


def may_see_raw_responses(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and (getattr(user, "is_admin_role", False) or getattr(user, "is_superuser", False))
    )


def automation_error_details_visible(*, error: AutomationError, user: Any) -> dict[str, Any]:
    details = dict(error.details or {}) if isinstance(error.details, dict) else {}
    if error.source != AutomationError.Source.AGENT or may_see_raw_responses(user):
        return details
    for key in RAW_RESPONSE_KEYS:
        if key in details:
            details[key] = HIDDEN
    return details
