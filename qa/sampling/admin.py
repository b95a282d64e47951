"""The sampling rules in the admin: the global one (one row, `sampling_rule_save`) and the sites'
own (`site_sampling_rule_save` / `_delete`), set by admins."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from accounts.auth import signed_in_user
from qa.sampling.models import SAMPLING_RULE_PK, SamplingRule, SiteSamplingRule
from qa.sampling.services import (
    sampling_rule_save,
    site_sampling_rule_delete,
    site_sampling_rule_save,
)


class _AdminsOnly(admin.ModelAdmin):
    """Sampling decides what QA sees: admins (superusers) only, to read as well as to change."""

    def _is_admin(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_admin(request)


@admin.register(SamplingRule)
class SamplingRuleAdmin(_AdminsOnly):
    fields = ("automation_errors", "needs_human", "email_incomplete", "keywords", "random_percent")
    readonly_fields = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_admin(request) and not SamplingRule.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        # One rule: the list is its form (the add form with the defaults until first saved).
        if not self._is_admin(request):
            return super().changelist_view(request, extra_context)
        if SamplingRule.objects.filter(pk=SAMPLING_RULE_PK).exists():
            url = reverse("admin:qa_samplingrule_change", args=[SAMPLING_RULE_PK])
        else:
            url = reverse("admin:qa_samplingrule_add")
        return HttpResponseRedirect(url)

    def save_model(self, request: HttpRequest, obj: SamplingRule, form: Any, change: bool) -> None:
        saved = sampling_rule_save(
            by=signed_in_user(request),
            automation_errors=form.cleaned_data["automation_errors"],
            needs_human=form.cleaned_data["needs_human"],
            email_incomplete=form.cleaned_data["email_incomplete"],
            keywords=form.cleaned_data["keywords"],
            random_percent=form.cleaned_data["random_percent"],
        )
        obj.pk = saved.pk
        obj._state.adding = False
        obj._state.db = saved._state.db

    def response_post_save_change(self, request: HttpRequest, obj: SamplingRule):
        return HttpResponseRedirect(reverse("admin:qa_samplingrule_change", args=[obj.pk]))

    def response_post_save_add(self, request: HttpRequest, obj: SamplingRule):
        return HttpResponseRedirect(reverse("admin:qa_samplingrule_change", args=[obj.pk]))


@admin.register(SiteSamplingRule)
class SiteSamplingRuleAdmin(_AdminsOnly):
    """A site's own rule: listed per site, set and removed by admins through the services."""

    list_display = (
        "site",
        "random_percent",
        "automation_errors",
        "needs_human",
        "email_incomplete",
        "keyword_count",
        "updated_at",
    )
    list_select_related = ("site",)
    fields = (
        "site",
        "automation_errors",
        "needs_human",
        "email_incomplete",
        "keywords",
        "random_percent",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_admin(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A rule belongs to its site: another site gets a rule of its own.
        return ("site",) if obj is not None else ()

    @admin.display(description="keywords")
    def keyword_count(self, obj: SiteSamplingRule) -> int:
        return len(obj.keyword_list)

    def save_model(
        self, request: HttpRequest, obj: SiteSamplingRule, form: Any, change: bool
    ) -> None:
        saved = site_sampling_rule_save(
            by=signed_in_user(request),
            site=obj.site,
            automation_errors=form.cleaned_data["automation_errors"],
            needs_human=form.cleaned_data["needs_human"],
            email_incomplete=form.cleaned_data["email_incomplete"],
            keywords=form.cleaned_data["keywords"],
            random_percent=form.cleaned_data["random_percent"],
        )
        obj.pk = saved.pk
        obj._state.adding = False
        obj._state.db = saved._state.db

    def delete_model(self, request: HttpRequest, obj: SiteSamplingRule) -> None:
        site_sampling_rule_delete(by=signed_in_user(request), site=obj.site)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        by = signed_in_user(request)
        for rule in queryset.select_related("site"):
            site_sampling_rule_delete(by=by, site=rule.site)
