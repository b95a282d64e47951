"""Replays in the QA console: the list, a replay beside its original, and the two POSTs (ask
for a replay of a session; verify or re-flag the session from its replay).

Every write is a service call: `qa.replay.services.replay_request`, and the QA moves of
`qa.services` (`qa_mark_passed`, `qa_mark_issue`), with their permission checks.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.auth import signed_in_user
from qa import services as qa_services
from qa.admin.review import QA_DONE_LABELS
from qa.display import qa_badge
from qa.replay import selectors
from qa.replay.models import Replay, ReplayStatus
from qa.replay.services import can_replay, replay_request
from sessions_app.errors import DomainError
from sessions_app.models import ChatSession, QAStatus

# What the replay page offers, by the session's QA status (the moves QA_MOVES allows).
REPLAY_DECISIONS = {
    QAStatus.PASSED: "Verified by the replay: mark passed",
    QAStatus.ISSUE: "Still wrong: re-flag the issue",
}


def replay_badge(status: str) -> SafeString:
    return format_html(
        '<span class="qa-badge qa-replay-badge qa-replay-badge--{}">{}</span>',
        status,
        ReplayStatus(status).label,
    )


class SessionFilter(admin.SimpleListFilter):
    """`?session=<id>`: one session's replays (the review page's "All replays" link)."""

    title = "session"
    parameter_name = "session"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        value = self.value()
        return [(value, f"Session {value}")] if value and value.isdigit() else []

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(session_id=int(value))
        return queryset


@admin.register(Replay)
class ReplayAdmin(admin.ModelAdmin):
    list_display = (
        "requested",
        "session_link",
        "status_badge",
        "trigger",
        "requested_by",
        "version",
        "reason",
    )
    list_filter = ("status", "trigger", SessionFilter)
    list_select_related = ("session", "session__site")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = None

    # --- permissions: QA reviewers and admins, read only -----------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_replay(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_replay(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- list ------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest):
        return selectors.replays_for_console()

    @admin.display(description="Requested", ordering="requested_at")
    def requested(self, obj: Replay) -> str:
        return obj.requested_at.strftime("%Y-%m-%d %H:%M")

    @admin.display(description="Session")
    def session_link(self, obj: Replay) -> SafeString | str:
        if obj.session is None:
            return "(erased)"
        url = reverse("admin:sessions_app_chatsession_change", args=[obj.session.pk])
        return format_html('<a href="{}">{}</a>', url, str(obj.session))

    @admin.display(description="Status")
    def status_badge(self, obj: Replay) -> SafeString:
        return replay_badge(obj.status)

    @admin.display(description="Agent version")
    def version(self, obj: Replay) -> str:
        return obj.agent_version_label or "-"

    # --- URLs --------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "request/<int:session_id>/",
                self.admin_site.admin_view(self.request_view),
                name="qa_replay_request",
            ),
            path(
                "<int:replay_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="qa_replay_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """A replay beside its original, message by message (read only; no model form)."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        replay = selectors.replay_for_page(int(object_id)) if object_id.isdigit() else None
        if replay is None:
            self.message_user(request, "That replay does not exist.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:qa_replay_changelist"))
        session = replay.session
        decisions: list[tuple[str, str]] = []
        if session is not None and not session.is_deleted and replay.status == ReplayStatus.DONE:
            allowed = qa_services.allowed_moves(current=session.qa_status, user=request.user)
            decisions = [
                (move, label) for move, label in REPLAY_DECISIONS.items() if move in allowed
            ]
        pairs = selectors.side_by_side(replay)
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay beside the original",
            "opts": self.opts,
            "replay": replay,
            "replay_badge": replay_badge(replay.status),
            "session": session,
            "qa_badge": qa_badge(session.qa_status) if session is not None else "",
            "pairs": pairs,
            "changed_count": sum(1 for pair in pairs if pair.changed),
            "decisions": decisions,
            "decide_url": reverse("admin:qa_replay_decide", args=[replay.pk]),
            "session_url": reverse("admin:sessions_app_chatsession_change", args=[session.pk])
            if session is not None and not session.is_deleted
            else "",
            "media": self.media,
        }
        return TemplateResponse(request, "admin/qa/replay/side_by_side.html", context)

    def request_view(self, request: HttpRequest, session_id: int) -> HttpResponse:
        """The session page's "Replay now": queue a replay, then open it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not can_replay(request.user):
            raise PermissionDenied
        session = ChatSession.objects.filter(pk=session_id).first()
        if session is None:
            self.message_user(
                request, "That session no longer exists; nothing to replay.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:sessions_app_chatsession_changelist"))
        replay, created = replay_request(session=session, by=signed_in_user(request))
        if replay.status == ReplayStatus.FAILED:
            self.message_user(request, f"Replay not run: {replay.reason}", messages.ERROR)
        elif not created:
            self.message_user(
                request, "A replay of this session is already under way.", messages.INFO
            )
        else:
            self.message_user(
                request, "Replay queued: the worker runs it in a moment.", messages.SUCCESS
            )
        return HttpResponseRedirect(reverse("admin:qa_replay_change", args=[replay.pk]))

    def decide_view(self, request: HttpRequest, replay_id: int) -> HttpResponse:
        """Verify (passed) or re-flag (issue) the replayed session, through qa.services."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        replay = selectors.replay_for_page(replay_id)
        back = reverse("admin:qa_replay_change", args=[replay_id])
        if replay is None or replay.session is None:
            self.message_user(request, "That replay's session no longer exists.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:qa_replay_changelist"))
        decision = request.POST.get("decision", "")
        note = request.POST.get("qa_note", "").replace("\r\n", "\n").strip()
        if decision not in REPLAY_DECISIONS:
            self.message_user(request, "Choose verify or re-flag.", messages.ERROR)
            return HttpResponseRedirect(back)
        if replay.status != ReplayStatus.DONE:
            self.message_user(
                request, "Only a finished replay can verify or re-flag.", messages.ERROR
            )
            return HttpResponseRedirect(back)
        by = signed_in_user(request)
        via = f"After replay {str(replay.public_id)[:8]}"
        said = f"{via}: {note}" if note else None
        try:
            # Without a note of its own the history row still says the replay decided it.
            if decision == QAStatus.PASSED:
                qa_services.qa_mark_passed(session=replay.session, by=by, note=said, via=via)
            else:
                qa_services.qa_mark_issue(session=replay.session, by=by, note=said, via=via)
        except (DomainError, PermissionDenied) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(request, f"Session {QA_DONE_LABELS[decision]}.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:sessions_app_chatsession_change", args=[replay.session.pk])
        )
