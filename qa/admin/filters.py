"""List filters of the QA console: the review queue opens on what needs review."""

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from qa import claims, selectors
from sessions_app.models import (
    ArchiveStatus,
    QAStatus,
)


class DefaultChoiceFilter(admin.SimpleListFilter):
    """A choice filter with a default value applied when the URL names none, and an explicit
    "All" (`?param=all`). The review queue opens on what needs review."""

    parameter_name: str  # set by every subclass (Django refuses a filter without one)
    default: str = ""
    choices_source: list[tuple[str, str]] = []
    field_name: str = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return list(self.choices_source)

    def effective_value(self) -> str:
        value = self.value()
        if value is None:
            return self.default
        return value

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.effective_value()
        if value == "all" or value not in dict(self.choices_source):
            return queryset
        return queryset.filter(**{self.field_name: value})

    def choices(self, changelist: ChangeList):
        current = self.effective_value()
        yield {
            "selected": current == "all",
            "query_string": changelist.get_query_string({self.parameter_name: "all"}),
            "display": "All",
        }
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }


class QAStatusFilter(DefaultChoiceFilter):
    title = "QA status"
    parameter_name = "qa_status"
    field_name = "qa_status"
    default = QAStatus.UNCHECKED
    choices_source = list(QAStatus.choices)


class ArchiveFilter(DefaultChoiceFilter):
    title = "archive"
    parameter_name = "archive"
    field_name = "archive_status"
    # Archiving hides a session from default lists (SPEC 3); "All" shows both.
    default = ArchiveStatus.ACTIVE
    choices_source = list(ArchiveStatus.choices)


class HasErrorsFilter(admin.SimpleListFilter):
    title = "automation errors"
    parameter_name = "has_errors"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Has errors"), ("no", "No errors")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(selectors.has_errors_expression())
        if self.value() == "no":
            return queryset.filter(~selectors.has_errors_expression())
        return queryset


class MyQueueFilter(admin.SimpleListFilter):
    """Sessions claimed by (a live claim) or assigned to the signed-in reviewer."""

    title = "my queue"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "My queue (claimed by or assigned to me)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "yes" or not request.user.is_authenticated:
            return queryset
        return queryset.filter(claims.my_queue_expression(request.user.pk, timezone.now()))
