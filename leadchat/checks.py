"""System checks of settings a newcomer or a deployment easily leaves out.

They run before `migrate`, `runserver` (so `make run` prints them), the delivery worker and every
other management command; they are warnings, not errors: the app works, but hands out wrong
links or sends nothing.
"""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def public_base_url_is_set_in_production(app_configs, **kwargs) -> list[Warning]:
    # In the embedded run the base URL follows `make run`'s HOST and PORT; in production nothing
    # can guess it, and the default (loopback) would go into every webhook link, email and the
    # admin's embed code.
    if settings.DEBUG or settings.PUBLIC_BASE_URL_SET:
        return []
    return [
        Warning(
            f"PUBLIC_BASE_URL is not set: links in webhooks and emails, and the embed code in "
            f"the admin, point at {settings.PUBLIC_BASE_URL}.",
            hint="Set PUBLIC_BASE_URL to this server's public address, "
            "e.g. https://chat.example.com.",
            id="leadchat.W001",
        )
    ]


@register()
def qa_emails_have_recipients(app_configs, **kwargs) -> list[Warning]:
    # Only under `make run` (its migrate and its server start print it): every other command
    # repeating it would bury its own output, and a production deployment may choose to send no
    # QA email (its `check --deploy --fail-level WARNING` must stay clean without one).
    if not settings.LEADCHAT_RUN_URL or settings.QA_NOTIFY_EMAILS:
        return []
    return [
        Warning(
            "QA_NOTIFY_EMAILS is empty: issues flagged in the QA console send no email.",
            hint="Set QA_NOTIFY_EMAILS (comma separated) in .env or the environment.",
            id="leadchat.W002",
        )
    ]


def log_start_up_warnings() -> None:
    """Log the start-up warnings above for a web server that runs no system checks (gunicorn)."""
    import logging

    logger = logging.getLogger("leadchat")
    for warning in public_base_url_is_set_in_production(None):
        logger.warning("%s (%s) %s", warning.msg, warning.id, warning.hint)
