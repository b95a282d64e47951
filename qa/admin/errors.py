"""Automation errors in the console: list, filter, link to the session, mark resolved."""

import json
from contextvars import ContextVar
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.auth import signed_in_user
from qa.admin.sessions import BULK_LIMIT
from qa.display import url_link
from qa.paginator import EstimatedCountPaginator
from sessions_app.error_details import automation_error_details_visible
from sessions_app.models import (
    AutomationError,
)
from sessions_app.services import automation_error_resolve

_viewer: ContextVar[Any] = ContextVar("automation_error_viewer", default=None)


@admin.register(AutomationError)
class AutomationErrorAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "source",
        "workflow",
        "node",
        "short_message",
        "session_link",
        "resolved",
    )
    list_filter = ("resolved", "source", "workflow")
    search_fields = ("workflow", "node", "execution_id")
    list_select_related = ("session",)
    sortable_by = ("created_at",)
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Facet counts are a COUNT per filter choice over the whole table: never at this scale.
    show_facets = admin.ShowFacets.NEVER
    actions = ["mark_resolved"]
    fields = (
        "created_at",
        "source",
        "workflow",
        "node",
        "message",
        "execution_id",
        "execution_link",
        "details_text",
        "session_link",
        "resolved",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("qa/console.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # errors arrive through the automation API and the services

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # resolve instead: the record is the audit trail

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The session page and the sessions list link here filtered by session.
        if lookup == "session__id__exact":
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AutomationError]:
        return super().get_queryset(request).select_related("session", "resolved_by")

    @admin.display(description="Message")
    def short_message(self, obj: AutomationError) -> str:
        return obj.message if len(obj.message) <= 120 else obj.message[:119] + "…"

    @admin.display(description="Session")
    def session_link(self, obj: AutomationError) -> SafeString | str:
        if obj.session_id is None:
            return "-"
        url = reverse("admin:sessions_app_chatsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.session))

    @admin.display(description="Execution URL")
    def execution_link(self, obj: AutomationError) -> SafeString | str:
        return url_link(obj.execution_url)

    @admin.display(description="Details")
    def details_text(self, obj: AutomationError) -> SafeString:
        # The backend's raw answer only for admins (sessions_app.error_details).
        details = automation_error_details_visible(error=obj, user=_viewer.get())
        return format_html(
            '<pre class="qa-pre">{}</pre>',
            json.dumps(details, indent=2, ensure_ascii=False, sort_keys=True),
        )

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.change_automationerror")

    @admin.action(description="Mark resolved", permissions=["resolve"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        pks = list(queryset.order_by().values_list("pk", flat=True)[: BULK_LIMIT + 1])
        if len(pks) > BULK_LIMIT:
            self.message_user(
                request, f"Select at most {BULK_LIMIT} errors at a time.", messages.ERROR
            )
            return
        count = 0
        for error in AutomationError.objects.filter(pk__in=pks, resolved=False):
            automation_error_resolve(error=error, by=signed_in_user(request))
            count += 1
        self.message_user(
            request, f"{count} error{'s' if count != 1 else ''} marked resolved.", messages.SUCCESS
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Read-only record: nothing posts to the change form (resolve from the list).
        if request.method == "POST":
            raise PermissionDenied("Automation errors are read-only; resolve them from the list.")
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete_link": False,
        }
        # Read-only fields get no request; the details panel needs to know who is looking (a
        # context variable, not an attribute: one ModelAdmin serves every thread).
        token = _viewer.set(request.user)
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()  # here, while the viewer is set, not lazily afterwards
            return response
        finally:
            _viewer.reset(token)
