"""Scorecard criteria and failure categories in the console: admins edit, QA reviewers read.

Configuration, not state: no history row (the scorecards keep what each judgement said).
Nothing is deleted here; a criterion or a category no longer wanted is deactivated, so the
scorecards that used it keep their meaning (the foreign keys PROTECT them as well).
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import User
from qa.scorecards.models import Criterion, FailureCategory
from qa.services import can_review


def _is_admin(request: HttpRequest) -> bool:
    user = request.user
    return isinstance(user, User) and user.is_active and user.is_admin_role


class ScorecardConfigAdmin(admin.ModelAdmin):
    list_display: tuple[str, ...] = ("name", "active", "order")
    search_fields = ("name",)
    ordering = ("order", "name")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request) or can_review(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Criterion)
class CriterionAdmin(ScorecardConfigAdmin):
    list_display = ("name", "kind", "active", "order")
    list_filter = ("active", "kind")
    fields = ("name", "description", "kind", "active", "order")


@admin.register(FailureCategory)
class FailureCategoryAdmin(ScorecardConfigAdmin):
    list_filter = ("active",)
    fields = ("name", "description", "active", "order")
