"""Dashboard pages under /dashboard/ (namespace dashboard).

Pages are thin: they check the role, render the frame and hand the browser a JSON config (URLs,
what the user may do); the tables and charts load from the staff API, so the page and a script
see the same data through the same role checks. The session detail is rendered on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from sessions_app import leads_selectors, selectors, takeover
from sessions_app.api.leads import LeadListParams, lead_filters
from sessions_app.api.params import request_time_zone
from sessions_app.api.permissions import (
    ARCHIVE_SESSIONS,
    CHANGE_ERRORS,
    EXPORT_SESSIONS,
    REPLY_SESSIONS,
    VIEW_ERRORS,
    VIEW_SESSIONS,
)
from sessions_app.badges import badges_config
from sessions_app.history import session_history
from sessions_app.leads_selectors import DEFAULT_LEAD_ORDERING
from sessions_app.models import (
    ArchiveStatus,
    AutomationError,
    Channel,
    ChatSession,
    CompletionStatus,
    QAStatus,
)
from widget import selectors as widget_selectors

# Panels of the session detail page, in order. A panel is a template that reads `session` (and
# whatever `session_panels_context` adds); to add one, append its template here and, if it needs
# data, extend `session_panels_context`.
SESSION_PANELS = [
    "dashboard/panels/lead.html",
    "dashboard/panels/statuses.html",
    "dashboard/panels/errors.html",
    "dashboard/panels/deliveries.html",
    "dashboard/panels/history.html",
]


class DashboardPage(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """Signed in and allowed to read sessions (agents, QA reviewers read-only, admins)."""

    permission_required: str | Sequence[str] = VIEW_SESSIONS
    page_name = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Times rendered on the server follow the browser's zone (cookie set by theme.js).
        timezone.activate(request_time_zone(request))
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["config"] = {
            "page": self.page_name,
            # Who is looking (notify.js: events about sessions this user holds).
            "user": user.get_username(),
            "pollMs": settings.DASHBOARD_POLL_MS,
            "can": {
                "archive": user.has_perm(ARCHIVE_SESSIONS),
                "export": user.has_perm(EXPORT_SESSIONS),
                "reply": user.has_perm(REPLY_SESSIONS),
                "resolve": user.has_perms([VIEW_ERRORS, CHANGE_ERRORS]),
            },
            "api": {
                "sessions": reverse("staff-api:sessions"),
                "changes": reverse("staff-api:sessions-changes"),
                "bulk": reverse("staff-api:sessions-bulk"),
                "stats": reverse("staff-api:stats"),
                "errors": reverse("staff-api:errors"),
                "exportCsv": reverse("staff-api:export-csv"),
                "exportJsonl": reverse("staff-api:export-jsonl"),
            },
            "sessionUrl": reverse("dashboard:sessions") + "__id__/",
            "badges": badges_config(),
        }
        return context


def _embed_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "any_sessions": ChatSession.objects.exists(),
        "sites": widget_selectors.sites_for_embed(limit=10),
        "origin": request.build_absolute_uri("/").rstrip("/"),
    }


class OverviewPage(DashboardPage):
    template_name = "dashboard/overview.html"
    page_name = "overview"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(_embed_context(self.request))
        context["all_sites"] = widget_selectors.sites_for_filter()
        context["open_errors"] = selectors.automation_errors_unresolved_count()
        return context


class SessionListPage(DashboardPage):
    template_name = "dashboard/sessions.html"
    page_name = "sessions"
    trash = False

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(_embed_context(self.request))
        context["trash"] = self.trash
        context["config"]["trash"] = self.trash
        context["all_sites"] = widget_selectors.sites_for_filter()
        context["choices"] = {
            "completion": CompletionStatus.choices,
            "qa": QAStatus.choices,
            "archive": [*ArchiveStatus.choices, ("all", "All")],
            "channel": Channel.choices,
        }
        context["trash_days"] = settings.TRASH_RETENTION_DAYS
        return context


class TrashPage(SessionListPage):
    page_name = "trash"
    trash = True


def session_panels_context(session: ChatSession) -> dict[str, Any]:
    """Extra data the detail panels need (beyond `session`, which has errors prefetched)."""
    return {
        "deliveries": [
            {"delivery": d, "target": selectors.delivery_recipients(d)}
            for d in selectors.session_deliveries(session)
        ],
        "history": session_history(session),
    }


class SessionDetailPage(DashboardPage):
    template_name = "dashboard/session_detail.html"
    page_name = "session"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            session = selectors.session_detail(public_id=kwargs["public_id"])
        except ChatSession.DoesNotExist:
            raise Http404("No such session.") from None
        context["session"] = session
        context["panels"] = SESSION_PANELS
        context.update(session_panels_context(session))
        context["config"]["session"] = {
            "id": str(session.public_id),
            "archived": session.archive_status == ArchiveStatus.ARCHIVED,
            "deleted": session.is_deleted,
        }
        # The takeover footer and its script (static/dashboard/takeover.js).
        messages = list(session.messages.all())  # prefetched by session_detail
        context["takeover_unsupported"] = takeover.takeover_unsupported(session)
        context["reply_blocked"] = takeover.reply_blocked(session) if session.held_by_id else None
        context["config"]["live"] = {
            "me": self.request.user.get_username(),
            "isAdmin": bool(getattr(self.request.user, "is_superuser", False)),
            "heldBy": session.held_by.get_username() if session.held_by else None,
            "cursor": max((m.pk for m in messages), default=0),
            "pollMs": settings.LIVE_POLL_MS,
            "unsupported": context["takeover_unsupported"],
        }
        return context


ERROR_SHOW_CHOICES = ("open", "resolved", "all")


class ErrorListPage(DashboardPage):
    template_name = "dashboard/errors.html"
    page_name = "errors"
    permission_required = (VIEW_SESSIONS, VIEW_ERRORS)
    page_size = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        show = self.request.GET.get("show", "open")
        if show not in ERROR_SHOW_CHOICES:
            # Said on the page, not silently swapped for another list (issue 16).
            context["unknown_filter"] = (
                f"Unknown value {show!r} for show; choose from: {', '.join(ERROR_SHOW_CHOICES)}. "
                "Showing the open errors."
            )
            show = "open"
        resolved = {"open": False, "resolved": True, "all": None}[show]
        paginator = Paginator(selectors.automation_errors_filter(resolved=resolved), self.page_size)
        context["page_obj"] = paginator.get_page(self.request.GET.get("page"))
        context["show"] = show
        context["sources"] = AutomationError.Source
        return context


# --- Leads (one row per person) -----------------------------------------------------------------


def _query_without(request: HttpRequest, *names: str) -> str:
    """The page's query string without `names` (for page links and export links)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


class LeadListPage(DashboardPage):
    """The Leads page, rendered on the server from the same selector and parameters as
    GET /api/leads/: a bad filter value is shown with its message (and a 400), never a 500."""

    template_name = "dashboard/leads.html"
    page_name = "leads"
    page_size = 25

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        response = self.render_to_response(context)
        if context["filter_errors"]:
            response.status_code = 400
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # The filter form sends every field, the empty ones as "" ("any"): left out, as the
        # sessions list's script leaves them out of its API calls.
        raw = {name: value for name, value in self.request.GET.dict().items() if value != ""}
        raw.setdefault("page_size", str(self.page_size))
        params = LeadListParams(data=raw, context={"request": self.request})
        context["filter_errors"] = []
        context["lead_page"] = None
        if params.is_valid():
            filters, ordering = lead_filters(params.validated_data, self.request)
            context["lead_page"] = leads_selectors.leads_page(
                filters,
                ordering=ordering,
                page=params.validated_data["page"],
                page_size=params.validated_data["page_size"],
            )
        else:
            context["filter_errors"] = [
                f"{name}: {' '.join(str(m) for m in messages)}"
                for name, messages in _flat_errors(params.errors).items()
            ]
        context["current"] = {
            "q": raw.get("q", ""),
            "archive": raw.get("archive", ArchiveStatus.ACTIVE),
            "qa_status": raw.get("qa_status", ""),
            "completion": raw.get("completion", ""),
            "site": raw.get("site", ""),
            "channel": raw.get("channel", ""),
            "date_from": raw.get("date_from", ""),
            "date_to": raw.get("date_to", ""),
            "ordering": raw.get("ordering", DEFAULT_LEAD_ORDERING),
        }
        context["all_sites"] = widget_selectors.sites_for_filter()
        context["choices"] = {
            "completion": CompletionStatus.choices,
            "qa": QAStatus.choices,
            "archive": [*ArchiveStatus.choices, ("all", "All")],
            "channel": Channel.choices,
            "ordering": LEAD_ORDERING_LABELS,
        }
        context["page_query"] = _query_without(self.request, "page")
        context["export_query"] = _query_without(self.request, "page", "page_size")
        return context


# What the Sort menu offers (every value is one LeadFilterParams accepts).
LEAD_ORDERING_LABELS = [
    ("-last_seen", "Last seen, newest first"),
    ("last_seen", "Last seen, oldest first"),
    ("-first_seen", "First seen, newest first"),
    ("first_seen", "First seen, oldest first"),
    ("-conversations", "Most conversations"),
    ("email", "Email A–Z"),
]


def _flat_errors(errors: Any) -> dict[str, list[str]]:
    """DRF's errors as {field: [message]} (non-field errors under their own key)."""
    flat: dict[str, list[str]] = {}
    for name, messages in dict(errors).items():
        if isinstance(messages, dict):
            for inner, inner_messages in messages.items():
                flat.setdefault(inner, []).extend(str(m) for m in inner_messages)
        else:
            flat.setdefault(name, []).extend(str(m) for m in messages)
    return flat


class LeadDetailPage(DashboardPage):
    """One person: who they are and every conversation they had, each linking to its page."""

    template_name = "dashboard/lead_detail.html"
    page_name = "lead"
    page_size = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            lead = leads_selectors.lead_detail(key=kwargs["lead_id"])
        except ChatSession.DoesNotExist:
            raise Http404("No such person.") from None
        paginator = Paginator(leads_selectors.lead_sessions(key=lead.key), self.page_size)
        context["lead"] = lead
        context["page_obj"] = paginator.get_page(self.request.GET.get("page"))
        return context
