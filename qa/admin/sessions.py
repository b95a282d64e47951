"""The QA review console: the Django admin for chat sessions and automation errors.

Every write goes through a service (`qa.services`, `sessions_app.services`): no `list_editable`,
no `queryset.update()`, no model form saving a status. Permissions are checked here for the UI
and again in the services, so a crafted POST is refused just like a hidden button.
"""

from collections import Counter
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from accounts.auth import signed_in_user
from qa import claims, selectors, services
from qa.admin.filters import ArchiveFilter, HasErrorsFilter, MyQueueFilter, QAStatusFilter
from qa.admin.panels import (
    Panel,
    deliveries_context,
    errors_context,
    history_context,
    lead_context,
    session_context,
)
from qa.admin.review import QA_DONE_LABELS, SessionReviewAdmin
from qa.display import qa_badge, state_badge
from qa.export import qa_results_response
from qa.paginator import EstimatedCountPaginator
from qa.replay.panels import replays_context
from qa.sampling.filters import SampledFilter
from qa.scorecards.console import (
    ScorecardConsoleMixin,
    annotated_transcript_context,
    scorecard_panel_context,
    summary_context,
)
from qa.scorecards.selectors import active_categories
from qa.scorecards.services import scorecard_issue_flag
from qa.trends.views import TrendsConsoleMixin
from sessions_app.errors import DomainError
from sessions_app.models import ChatSession, QAStatus
from sessions_app.selectors import sessions_search
from sessions_app.services import session_archive

# Bulk actions run one locked transaction (and, for issues, one email) per session: a "select
# all 200,000" click must be refused, not half-run for minutes.
BULK_LIMIT = 500


@admin.register(ChatSession)
class ChatSessionAdmin(ScorecardConsoleMixin, TrendsConsoleMixin, SessionReviewAdmin):
    list_display = (
        "started",
        "site_name",
        "lead",
        "completion",
        "archive",
        "qa",
        "message_total",
        "delivery",
        "errors",
    )
    list_display_links = ("started", "lead")
    # Only columns with an index behind them sort (a sort on 100k rows must not be a full scan).
    sortable_by = ("started",)
    list_filter = (
        QAStatusFilter,
        # With QA status "unchecked" (the default), the queue is "sampled and unchecked".
        SampledFilter,
        MyQueueFilter,
        "completion_status",
        ArchiveFilter,
        "site",
        "channel",
        ("started_at", admin.DateFieldListFilter),
        HasErrorsFilter,
    )
    search_fields = ("lead_name", "lead_email", "messages__text")
    search_help_text = "Lead name, lead email or any message of the transcript."
    list_select_related = ("site",)
    list_per_page = 50
    list_max_show_all = 200
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Facet counts are a COUNT per filter choice over the whole table: never at this scale.
    show_facets = admin.ShowFacets.NEVER
    actions = [
        "mark_passed",
        "flag_issue",
        "mark_fixed",
        "assign_reviewer",
        "archive_sessions",
        "export_csv",
    ]
    change_form_template = "admin/sessions_app/chatsession/change_form.html"

    panels: list[Panel] = [
        Panel("qa", "QA review", "admin/qa/panels/qa.html", scorecard_panel_context, area="side"),
        Panel("lead", "Lead", "admin/qa/panels/lead.html", lead_context, area="side"),
        Panel("session", "Session", "admin/qa/panels/session.html", session_context, "side"),
        Panel(
            "replays",
            "Replays and sampling",
            "admin/qa/panels/replays.html",
            replays_context,
            "side",
        ),
        Panel(
            "transcript",
            "Transcript",
            "admin/qa/panels/transcript.html",
            annotated_transcript_context,
            "main",
        ),
        Panel("history", "History", "admin/qa/panels/history.html", history_context),
        Panel("errors", "Automation errors", "admin/qa/panels/errors.html", errors_context),
        Panel(
            "deliveries",
            "Webhook deliveries and emails",
            "admin/qa/panels/deliveries.html",
            deliveries_context,
        ),
    ]

    class Media:
        css = {"all": ("qa/console.css",)}

    # --- permissions ---------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions start in the widget

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting is a soft delete in the dashboard (trash, restore, purge)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return services.can_review(request.user)

    def has_fix_permission(self, request: HttpRequest) -> bool:
        return services.can_fix(request.user)

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.archive_chatsession")

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sessions_app.export_chatsession")

    def has_assign_permission(self, request: HttpRequest) -> bool:
        return claims.can_assign(request.user)

    # --- list ----------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChatSession]:
        # Who is reviewing each row now: a subquery on the claim's unique key, not a query per row.
        return selectors.console_sessions().annotate(
            reviewing=claims.list_claim_holder_expression(timezone.now())
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        # A UNION of pk selects: no duplicate rows, so no DISTINCT over the page.
        return sessions_search(queryset, search_term), False

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj: ChatSession) -> str:
        return obj.started_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Site")
    def site_name(self, obj: ChatSession) -> str:
        return obj.site.name if obj.site else "-"

    @admin.display(description="Lead")
    def lead(self, obj: ChatSession) -> SafeString | str:
        if not (obj.lead_name or obj.lead_email):
            return "anonymous visitor"
        return format_html(
            '{}<br><span class="qa-muted">{}</span>', obj.lead_name or "-", obj.lead_email or "-"
        )

    @admin.display(description="Completion")
    def completion(self, obj: ChatSession) -> SafeString:
        return state_badge("completion", obj.completion_status)

    @admin.display(description="Archive")
    def archive(self, obj: ChatSession) -> SafeString:
        return state_badge("archive", obj.archive_status)

    @admin.display(description="QA")
    def qa(self, obj: ChatSession) -> SafeString:
        reviewing = getattr(obj, "reviewing", None)
        if not reviewing:
            return qa_badge(obj.qa_status)
        return format_html(
            '{}<br><span class="qa-muted qa-reviewing">reviewing: {}</span>',
            qa_badge(obj.qa_status),
            reviewing,
        )

    @admin.display(description="Messages")
    def message_total(self, obj: ChatSession) -> int:
        return obj.message_count

    @admin.display(description="Delivery")
    def delivery(self, obj: ChatSession) -> SafeString:
        return state_badge("delivery", obj.delivery_state)

    @admin.display(description="Errors")
    def errors(self, obj: ChatSession) -> SafeString | str:
        count = getattr(obj, "error_count", 0) or 0
        if not count:
            return "0"
        url = reverse("admin:sessions_app_automationerror_changelist")
        return format_html(
            '<a class="qa-error-count" href="{}?{}">{}</a>',
            url,
            urlencode({"session__id__exact": obj.pk}),
            count,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {
            **(extra_context or {}),
            "can_export": self.has_export_permission(request),
            "can_review": services.can_review(request.user),
            "export_query": request.GET.urlencode(),
            **summary_context(),
        }
        return super().changelist_view(request, extra_context)

    # --- actions -------------------------------------------------------------------------------

    def _bulk(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        verb: str,
        apply: Callable[[ChatSession], object],
    ) -> None:
        pks = list(queryset.order_by().values_list("pk", flat=True)[: BULK_LIMIT + 1])
        if len(pks) > BULK_LIMIT:
            self.message_user(
                request,
                f"Select at most {BULK_LIMIT} sessions at a time; nothing was {verb}.",
                messages.ERROR,
            )
            return
        done = 0
        refused: Counter[str] = Counter()
        for session in ChatSession.objects.filter(pk__in=pks).order_by("-started_at", "-id"):
            try:
                apply(session)
            except (DomainError, PermissionDenied) as exc:
                refused[str(exc)] += 1
            else:
                done += 1
        if done:
            self.message_user(
                request, f"{done} session{'s' if done != 1 else ''} {verb}.", messages.SUCCESS
            )
        for reason, count in refused.items():
            self.message_user(
                request,
                f"{count} session{'s' if count != 1 else ''} not {verb}: {reason}",
                messages.WARNING,
            )

    @admin.action(description="Mark passed", permissions=["review"])
    def mark_passed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(
            request,
            queryset,
            QA_DONE_LABELS[QAStatus.PASSED],
            lambda s: services.qa_mark_passed(session=s, by=signed_in_user(request)),
        )

    @admin.action(description="Flag issue (with a QA note)", permissions=["review"])
    def flag_issue(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        note = request.POST.get("qa_note", "").replace("\r\n", "\n").strip()
        # An issue needs a failure category (qa.scorecards): asked for with the note.
        picked = {v for v in request.POST.getlist("category") if v.isdigit()}
        if request.POST.get("post") == "yes" and note and picked:
            self._bulk(
                request,
                queryset,
                QA_DONE_LABELS[QAStatus.ISSUE],
                lambda s: scorecard_issue_flag(
                    session=s,
                    by=signed_in_user(request),
                    note=note,
                    category_ids=[int(v) for v in picked],
                ),
            )
            return None
        # Ask for the note first: the issue email and the developer both need to know what is
        # wrong. The page lists the selection (bounded) and posts it back with the note.
        selected = list(queryset.order_by("-started_at", "-id")[: BULK_LIMIT + 1])
        if len(selected) > BULK_LIMIT:
            self.message_user(
                request,
                f"Select at most {BULK_LIMIT} sessions at a time; nothing was flagged.",
                messages.ERROR,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Flag issue",
            "opts": self.model._meta,
            "sessions": selected,
            "note": note,
            "note_missing": request.POST.get("post") == "yes" and not note,
            "category_missing": request.POST.get("post") == "yes" and not picked,
            "categories": [
                {"category": c, "checked": str(c.pk) in picked} for c in active_categories()
            ],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/qa/flag_issue.html", context)

    @admin.action(description="Mark fixed", permissions=["fix"])
    def mark_fixed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(
            request,
            queryset,
            QA_DONE_LABELS[QAStatus.FIXED],
            lambda s: services.qa_mark_fixed(session=s, by=signed_in_user(request)),
        )

    @admin.action(description="Assign to a reviewer", permissions=["assign"])
    def assign_reviewer(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Assign the selection (or the whole filter, with "select all") to one reviewer."""
        choice_missing = False
        if request.POST.get("post") == "yes":
            try:
                to = self._reviewer_from_post(request)
            except ValueError:
                choice_missing = True
            else:
                self._bulk(
                    request,
                    queryset,
                    f"assigned to {claims.person(to)}" if to else "unassigned",
                    lambda s: claims.qa_assign(session=s, to=to, by=signed_in_user(request)),
                )
                return None
        selected = list(queryset.order_by("-started_at", "-id")[: BULK_LIMIT + 1])
        if len(selected) > BULK_LIMIT:
            self.message_user(
                request,
                f"Select at most {BULK_LIMIT} sessions at a time; nothing was assigned.",
                messages.ERROR,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Assign to a reviewer",
            "opts": self.model._meta,
            "sessions": selected,
            "reviewers": claims.reviewers(),
            "choice_missing": choice_missing,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/qa/assign.html", context)

    @admin.action(description="Archive", permissions=["archive"])
    def archive_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(
            request,
            queryset,
            "archived",
            lambda s: session_archive(session=s, by=signed_in_user(request)),
        )

    @admin.action(description="Export QA results (CSV)", permissions=["export"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return qa_results_response(queryset)

    # --- extra URLs ----------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="{}_{}_export".format(*info),
            ),
            # Before the stock URLs: their "<path:object_id>/" catch-all would take it.
            path(
                "<path:object_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="{}_{}_review".format(*info),
            ),
            path(
                "<path:object_id>/claim/",
                self.admin_site.admin_view(self.claim_view),
                name="{}_{}_claim".format(*info),
            ),
            path(
                "<path:object_id>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="{}_{}_assign".format(*info),
            ),
            path(
                "<path:object_id>/next/",
                self.admin_site.admin_view(self.next_view),
                name="{}_{}_next".format(*info),
            ),
            path(
                "<path:object_id>/previous/",
                self.admin_site.admin_view(self.previous_view),
                name="{}_{}_previous".format(*info),
            ),
            *self.scorecard_urls(),
            *self.trends_urls(),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """CSV of every session in the current filter (the changelist's query string)."""
        if not (self.has_view_permission(request) and self.has_export_permission(request)):
            raise PermissionDenied
        query = request.GET.copy()
        for key in ("p", "o", IS_POPUP_VAR):
            query.pop(key, None)
        try:
            changelist = self._changelist_for(request, query)
        except (IncorrectLookupParameters, SuspiciousOperation):
            # The list page answers a bad filter by redirecting to "?e=1"; a download cannot,
            # and a 500 helps nobody: say which parameter is wrong.
            return HttpResponseBadRequest(
                f"Cannot export: {self._bad_filter_parameter(request, query)}",
                content_type="text/plain; charset=utf-8",
            )
        return qa_results_response(changelist.queryset)

    def _bad_filter_parameter(self, request: HttpRequest, query: QueryDict) -> str:
        """Which parameter of `query` the changelist refuses (tried one at a time)."""
        for key in query:
            try:
                self._changelist_for(request, QueryDict(urlencode({key: query.get(key, "")})))
            except (IncorrectLookupParameters, SuspiciousOperation):
                # repr: the name is the client's text, shown as text (a plain-text response).
                return f"the filter parameter {key[:100]!r} is unknown or its value is invalid."
        return "the filter parameters do not go together."
