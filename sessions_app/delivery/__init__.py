"""Delivery: the outbox of lead webhooks and emails, the worker that sends it, its admin.

What the rest of leadchat may use is the list below; everything else in this subpackage is its
own business. Models are reached through `sessions_app.models` like every other model of the
app. It listens to `lead_captured`, `qa_issue_flagged` and `sessions_erasing`
(`sessions_app.delivery.receivers`, connected in SessionsAppConfig.ready()).

The names load on first use, not at import: `sessions_app.models` imports
`sessions_app.delivery.models` while the app registry is loading, and an eager import of the
services here would import `sessions_app.models` again before it is complete.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessions_app.delivery.heartbeat import worker_heartbeat_beat, worker_heartbeat_latest
    from sessions_app.delivery.outbox import (
        channel_reply_enqueue,
        deliveries_failed_since,
        deliveries_redeliver_failed,
        delivery_cancel,
        delivery_redeliver,
        email_enqueue,
        endpoint_from_settings,
        webhook_endpoint_rotate_secret,
        webhook_endpoint_set_active,
    )
    from sessions_app.delivery.registry import register_delivery_sender, register_worker_job
    from sessions_app.delivery.webhook_secrets import (
        generate_webhook_secret,
        is_valid_webhook_secret,
    )
    from sessions_app.delivery.webhooks import SendResult, parse_retry_after
    from sessions_app.delivery.worker import DeliveryWorker, EndpointUnavailable, webhook_ping_send

_PUBLIC: dict[str, str] = {
    "DeliveryWorker": "worker",
    "EndpointUnavailable": "worker",
    "webhook_ping_send": "worker",
    "channel_reply_enqueue": "outbox",
    "deliveries_failed_since": "outbox",
    "deliveries_redeliver_failed": "outbox",
    "delivery_cancel": "outbox",
    "delivery_redeliver": "outbox",
    "email_enqueue": "outbox",
    "endpoint_from_settings": "outbox",
    "webhook_endpoint_rotate_secret": "outbox",
    "webhook_endpoint_set_active": "outbox",
    "SendResult": "webhooks",
    "parse_retry_after": "webhooks",
    "register_delivery_sender": "registry",
    "register_worker_job": "registry",
    "worker_heartbeat_beat": "heartbeat",
    "worker_heartbeat_latest": "heartbeat",
    "generate_webhook_secret": "webhook_secrets",
    "is_valid_webhook_secret": "webhook_secrets",
}

__all__ = [
    "DeliveryWorker",
    "EndpointUnavailable",
    "SendResult",
    "channel_reply_enqueue",
    "deliveries_failed_since",
    "deliveries_redeliver_failed",
    "delivery_cancel",
    "delivery_redeliver",
    "email_enqueue",
    "endpoint_from_settings",
    "generate_webhook_secret",
    "is_valid_webhook_secret",
    "parse_retry_after",
    "register_delivery_sender",
    "register_worker_job",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_set_active",
    "webhook_ping_send",
    "worker_heartbeat_beat",
    "worker_heartbeat_latest",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
