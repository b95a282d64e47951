"""Admin for the outbox: webhook endpoints and deliveries with their attempt log.

ChatSession and AutomationError are registered by the QA console (qa/admin.py). Every status
change here goes through sessions_app.outbox; nothing is edited in place.
"""

import json

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from sessions_app import outbox
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookEndpoint,
)

STATUS_COLOURS = {
    DeliveryStatus.PENDING: "#6c757d",
    DeliveryStatus.SENDING: "#0d6efd",
    DeliveryStatus.DELIVERED: "#198754",
    DeliveryStatus.FAILED: "#dc3545",
    DeliveryStatus.CANCELLED: "#adb5bd",
}


def _badge(text: str, colour: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 6px;border-radius:8px">{}</span>',
        colour,
        text,
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "url",
        "site",
        "active_badge",
        "last_success_at",
        "last_failure_at",
        "last_failure_reason",
    ]
    list_filter = ["is_active", "site", "from_settings"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ["name", "url"]
    list_select_related = ["site"]
    readonly_fields = [
        "from_settings",
        "disabled_at",
        "disabled_reason",
        "last_success_at",
        "last_failure_at",
        "last_failure_reason",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "url", "site", "events", "is_active"]}),
        ("Signing and auth", {"fields": ["secret", "auth_header_name", "auth_header_value"]}),
        (
            "Health",
            {
                "fields": [
                    "last_success_at",
                    "last_failure_at",
                    "last_failure_reason",
                    "disabled_at",
                    "disabled_reason",
                    "from_settings",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description="active", ordering="is_active")
    def active_badge(self, obj: WebhookEndpoint):
        if obj.is_active:
            return _badge("active", "#198754")
        return _badge("disabled", "#dc3545")

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        if obj.is_active and obj.disabled_at:
            # Switched back on by a person: the reason it was off no longer applies.
            obj.disabled_at = None
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = [
        "number",
        "attempted_at",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
        "worker",
        "requested_by",
    ]
    readonly_fields = fields
    ordering = ["-attempted_at", "-id"]

    @admin.display(description="response (first 4 KB)")
    def response_excerpt(self, obj: DeliveryAttempt):
        return format_html(
            '<pre style="white-space:pre-wrap;max-width:40em">{}</pre>', obj.response_body
        )

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("requested_by")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type",
        "event_id",
        "target",
        "status_badge",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_latency_ms",
        "created_at",
    ]
    list_filter = ["status", "kind", "event_type", "endpoint", "created_at"]
    search_fields = ["event_id", "subject_email"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver", "cancel"]
    fields = [
        "event_id",
        "event_type",
        "kind",
        "endpoint",
        "session",
        "status",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "claimed_by",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "last_latency_ms",
        "delivered_at",
        "created_at",
        "redelivery_requested_by",
        "redelivery_requested_at",
        "cancelled_by",
        "cancelled_at",
        "payload_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # The log is evidence of what was sent; erasure (GDPR) removes rows through its service.
        return False

    @admin.display(description="to")
    def target(self, obj: Delivery) -> str:
        if obj.endpoint_id:
            return obj.endpoint.name
        return ", ".join(obj.payload.get("to", [])) if isinstance(obj.payload, dict) else ""

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery):
        return _badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#6c757d"))

    @admin.display(description="payload (frozen)")
    def payload_pretty(self, obj: Delivery):
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre style="white-space:pre-wrap;max-width:60em">{}</pre>', text)

    def _act(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        done, refused = 0, []
        for delivery in queryset:
            try:
                service(delivery=delivery, by=request.user)
                done += 1
            except TransitionNotAllowed as exc:
                refused.append(f"{delivery.event_id}: {exc}")
        if done:
            self.message_user(request, f"{verb} {done} delivery(ies).", messages.SUCCESS)
        for line in refused[:20]:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Redeliver (same event id, new attempt)", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._act(request, queryset, outbox.delivery_redeliver, "Queued again")

    @admin.action(description="Cancel", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._act(request, queryset, outbox.delivery_cancel, "Cancelled")
