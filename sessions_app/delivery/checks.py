"""System checks of the delivery settings (run by `manage.py check`, `migrate` and before every
command, the delivery worker's included)."""

from django.conf import settings
from django.core.checks import Error, register

from sessions_app.delivery.webhook_secrets import GENERATE_HINT, is_valid_webhook_secret

# The lease must cover a send's hard deadline and then the time to record its outcome (a
# database write, a scheduler pause), or a second worker could reclaim a row whose first send
# is still on the wire. Twice the deadline leaves a margin as long as the send itself.
LEASE_PER_DEADLINE = 2


@register()
def delivery_lease_outlasts_a_send(app_configs, **kwargs) -> list[Error]:
    deadline = settings.WEBHOOK_TOTAL_TIMEOUT
    needed = deadline * LEASE_PER_DEADLINE
    if needed > settings.DELIVERY_LEASE_SECONDS:
        return [
            Error(
                f"DELIVERY_LEASE_SECONDS ({settings.DELIVERY_LEASE_SECONDS}) must be at least "
                f"{LEASE_PER_DEADLINE} x WEBHOOK_TOTAL_TIMEOUT ({deadline:g} s) = {needed:g}: "
                "a shorter lease lets a second worker send a row that is still on the wire.",
                id="sessions_app.E001",
            )
        ]
    if settings.DELIVERY_MAX_CRASHES < 1:
        return [Error("DELIVERY_MAX_CRASHES must be at least 1.", id="sessions_app.E002")]
    return []


@register()
def lead_webhook_secret_is_well_formed(app_configs, **kwargs) -> list[Error]:
    # Empty is fine: the endpoint then gets a generated secret, shown in the admin. A malformed
    # one would be copied onto the endpoint and fail every signature, so nothing starts with it.
    secret = settings.LEAD_WEBHOOK_SECRET
    if not secret or is_valid_webhook_secret(secret):
        return []
    return [
        Error(
            "LEAD_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ followed by base64 "
            "of at least 24 random bytes.",
            hint=f"Generate one with: {GENERATE_HINT}",
            id="sessions_app.E003",
        )
    ]
