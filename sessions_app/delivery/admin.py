"""The delivery admin: webhook endpoints, and deliveries with their attempt log.

ChatSession and AutomationError are registered by the QA console (qa/admin). Every status
change here goes through sessions_app.delivery.outbox; nothing is edited in place.
"""

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from accounts.auth import signed_in_user
from sessions_app.delivery import outbox
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookEndpoint,
)

STATUS_COLOURS: dict[str, str] = {
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


# Fields of the LEAD_WEBHOOK_URL endpoint that the environment sets: shown, never edited here
# (an edit would be put back on the next lead).
SETTINGS_MANAGED_FIELDS = ["name", "url", "auth_header_name", "auth_header_value"]


class RedeliverFailedForm(forms.Form):
    failed_since = forms.DateTimeField(
        label="Failed at or after",
        help_text="Server time zone, e.g. 2026-12-01 08:00. Each failed delivery of the selected "
        "endpoints whose last try was then or later is sent again, same event id.",
    )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "url",
        "site",
        "active_badge",
        "waiting",
        "last_success_at",
        "last_failure_at",
        "last_failure_reason",
    ]
    list_filter = ["is_active", "site", "from_settings"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ["name", "url"]
    list_select_related = ["site"]
    actions = ["redeliver_failed"]
    readonly_fields = [
        "managed_by",
        "held_leads",
        "from_settings",
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "secret_rotated_at",
        "last_success_at",
        "last_failure_at",
        "last_failure_reason",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["managed_by", "name", "url", "site", "events", "is_active"]}),
        ("Signing and auth", {"fields": ["secret", "auth_header_name", "auth_header_value"]}),
        (
            "Health",
            {
                "fields": [
                    "held_leads",
                    "last_success_at",
                    "last_failure_at",
                    "last_failure_reason",
                    "failing_since",
                    "disabled_at",
                    "disabled_reason",
                    "secret_rotated_at",
                    "from_settings",
                    "created_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Endpoints are few; one grouped count beside them, not one query per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                waiting_count=Count(
                    "deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)
                )
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.from_settings:
            fields += SETTINGS_MANAGED_FIELDS
            if settings.LEAD_WEBHOOK_SECRET:
                fields.append("secret")
        return fields

    @admin.display(description="managed by")
    def managed_by(self, obj: WebhookEndpoint) -> str:
        if obj.from_settings:
            return (
                "The environment: LEAD_WEBHOOK_URL, LEAD_WEBHOOK_AUTH_HEADER / _VALUE"
                + (" and LEAD_WEBHOOK_SECRET" if settings.LEAD_WEBHOOK_SECRET else "")
                + ". Change them there and restart; only switching it on or off is done here."
            )
        return "This admin."

    @admin.display(description="active", ordering="is_active")
    def active_badge(self, obj: WebhookEndpoint):
        if obj.is_active:
            return _badge("active", "#198754")
        return _badge("paused", "#dc3545")

    @admin.display(description="waiting", ordering="waiting_count")
    def waiting(self, obj: WebhookEndpoint) -> int:
        return getattr(obj, "waiting_count", 0)

    @admin.display(description="held leads")
    def held_leads(self, obj: WebhookEndpoint) -> str:
        count = getattr(obj, "waiting_count", None)
        if count is None:
            count = obj.deliveries.filter(status=DeliveryStatus.PENDING).count()
        if obj.is_active:
            return f"{count} delivery(ies) waiting to be sent."
        return (
            f"Paused: {count} delivery(ies) are held here and go out as soon as this endpoint "
            "is switched on again (tick 'Is active' and save)."
        )

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        active = obj.is_active
        if not change:
            super().save_model(request, obj, form, change)
            return
        stored = WebhookEndpoint.objects.get(pk=obj.pk)
        # The on/off switch and the secret each have their service: they pause or release
        # held leads, and keep the previous secret signing through the overlap window.
        obj.is_active = stored.is_active
        new_secret, obj.secret = obj.secret, stored.secret
        super().save_model(request, obj, form, change)
        if new_secret != stored.secret:
            outbox.webhook_endpoint_rotate_secret(endpoint=obj, secret=new_secret)
        if active != stored.is_active:
            outbox.webhook_endpoint_set_active(
                endpoint=obj,
                active=active,
                reason=f"Switched off in the admin by {request.user.get_username()}.",
                by=signed_in_user(request),
            )

    @admin.action(description="Redeliver failed deliveries since…", permissions=["change"])
    def redeliver_failed(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = RedeliverFailedForm(
            request.POST if request.POST.get("post") == "yes" else None,
            initial={"failed_since": timezone.now() - timedelta(days=1)},
        )
        if form.is_bound and form.is_valid():
            since = form.cleaned_data["failed_since"]
            for endpoint in queryset:
                queued, refused = outbox.deliveries_redeliver_failed(
                    since=since, endpoint=endpoint, by=signed_in_user(request)
                )
                self.message_user(
                    request,
                    f"{endpoint.name}: queued {queued} failed delivery(ies) again.",
                    messages.SUCCESS if queued else messages.INFO,
                )
                for line in refused[:20]:
                    self.message_user(request, line, messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Redeliver failed deliveries",
            "opts": self.model._meta,
            "endpoints": list(queryset),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/sessions_app/redeliver_failed.html", context)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "attempted_at",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
        "worker",
        "requested_by",
    )
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
    fields = (
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
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # The log is evidence of what was sent; erasure (GDPR) removes rows through its service.
        return False

    @admin.display(description="to")
    def target(self, obj: Delivery) -> str:
        if obj.endpoint is not None:
            return obj.endpoint.name
        return ", ".join(obj.payload.get("to", [])) if isinstance(obj.payload, dict) else ""

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery):
        if obj.status == DeliveryStatus.PENDING and obj.endpoint and not obj.endpoint.is_active:
            return _badge("held: endpoint paused", "#fd7e14")
        return _badge(obj.get_status_display(), STATUS_COLOURS.get(obj.status, "#6c757d"))

    @admin.display(description="payload (frozen)")
    def payload_pretty(self, obj: Delivery):
        text = json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre style="white-space:pre-wrap;max-width:60em">{}</pre>', text)

    def _act(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        done, refused = 0, []
        for delivery in queryset:
            try:
                service(delivery=delivery, by=signed_in_user(request))
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
