"""Role checks of the staff API, as Django permissions (accounts/roles.py is the table).

Agents and admins use the whole dashboard API; QA reviewers may read (sessions, stats, errors,
exports) but not archive, delete or restore. Admins are superusers and pass every check.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

VIEW_SESSIONS = "sessions_app.view_chatsession"
ARCHIVE_SESSIONS = "sessions_app.archive_chatsession"
EXPORT_SESSIONS = "sessions_app.export_chatsession"
REPLY_SESSIONS = "sessions_app.reply_chatsession"
VIEW_ERRORS = "sessions_app.view_automationerror"
CHANGE_ERRORS = "sessions_app.change_automationerror"


def requires(*perms: str, message: str) -> type[BasePermission]:
    """A DRF permission class passing authenticated, active users holding every `perms`."""

    class Requires(BasePermission):
        message: str  # set below, from the factory's argument

        def has_permission(self, request: Any, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    Requires.message = message
    Requires.__name__ = "Requires_" + "_".join(p.split(".")[-1] for p in perms)
    return Requires


CanViewSessions = requires(VIEW_SESSIONS, message="Your role may not read sessions.")
CanArchiveSessions = requires(
    VIEW_SESSIONS,
    ARCHIVE_SESSIONS,
    message="Your role may not archive, delete or restore sessions.",
)
# Answering visitors (dismissing a request for a person): agents and admins, never QA reviewers,
# who stay read-only. Agents hold no permission of their own for it yet, so it rides on the one
# QA reviewers lack; a takeover permission, once there is one, belongs here instead.
CanAnswerVisitors = requires(
    VIEW_SESSIONS, ARCHIVE_SESSIONS, message="Your role may not answer visitors."
)
CanExportSessions = requires(
    VIEW_SESSIONS, EXPORT_SESSIONS, message="Your role may not export sessions."
)
CanViewErrors = requires(VIEW_ERRORS, message="Your role may not read automation errors.")
CanResolveErrors = requires(
    VIEW_ERRORS, CHANGE_ERRORS, message="Your role may not resolve automation errors."
)
CanReplyToSessions = requires(
    VIEW_SESSIONS,
    REPLY_SESSIONS,
    message="Your role may not take sessions over or write to visitors (QA reviewers only read).",
)
