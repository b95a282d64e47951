"""The role -> Django group and permission table.

Kept as data so the QA console, the dashboard and the `setup_roles` command read one source.
Admins are superusers and need no group permissions; the group exists so that admins are listed
together and can be given site-specific extras by hand.
"""

from accounts.models import Role

GROUP_NAMES: dict[str, str] = {
    Role.ADMIN: "Admins",
    Role.QA: "QA reviewers",
    Role.AGENT: "Agents",
}

# "app_label.codename" for each role's group. Agents work in the dashboard only: they get the
# model permissions the staff API checks, but never is_staff, so the admin stays closed to them.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMIN: [],
    Role.QA: [
        "sessions_app.view_chatsession",
        "sessions_app.change_chatsession",
        "sessions_app.review_chatsession",
        "sessions_app.export_chatsession",
        "sessions_app.view_chatmessage",
        "sessions_app.view_automationerror",
        "sessions_app.change_automationerror",
        # The delivery log is part of the console (read only; redeliver stays with admins).
        "sessions_app.view_delivery",
        "widget.view_site",
    ],
    Role.AGENT: [
        "sessions_app.view_chatsession",
        "sessions_app.archive_chatsession",
        "sessions_app.export_chatsession",
        # Take a session over from the AI and write to the visitor (QA reviewers only read).
        "sessions_app.reply_chatsession",
        "sessions_app.view_chatmessage",
        "sessions_app.view_automationerror",
        "sessions_app.change_automationerror",
        "widget.view_site",
    ],
}

# Whether a role may open the Django admin (the QA console).
STAFF_ROLES = {Role.ADMIN, Role.QA}
