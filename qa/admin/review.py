"""The session review page of the QA console: the stock change view plus the QA panel's form.

Nothing on a session is edited through the model form (no fieldsets); the panels show it
read-only. The QA panel is a `QAReviewForm` posting to `review_view` (the admin URL
`<id>/review/`, wired in `ChatSessionAdmin.get_urls`), which hands it to
`qa.scorecards.services.scorecard_review_submit` (the reviewer's scorecard, then
`services.qa_review_submit`): the permissions, the move and the transaction are the services'.
"""

import copy
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.urls import reverse
from django.utils import timezone

from accounts.auth import signed_in_user
from accounts.models import User
from qa import claims, queue, selectors, services
from qa.admin.panels import Panel
from qa.display import qa_badge
from qa.forms import QAReviewForm
from qa.scorecards.forms import ScorecardInputError, scorecard_input
from qa.scorecards.services import scorecard_review_submit
from sessions_app.errors import DomainError
from sessions_app.models import ChatSession, QAStatus

# How many neighbours "next" tries when the ones it finds are claimed in the same instant.
NAVIGATION_TRIES = 10
# The request session's note of the QA session its user has just decided (see review_view).
JUST_DECIDED_SESSION_KEY = "qa_just_decided"

QA_ACTION_LABELS: dict[str, str] = {
    QAStatus.PASSED: "Mark passed",
    QAStatus.ISSUE: "Flag issue",
    QAStatus.FIXED: "Mark fixed",
}
QA_DONE_LABELS: dict[str, str] = {
    QAStatus.PASSED: "marked passed",
    QAStatus.ISSUE: "flagged as an issue",
    QAStatus.FIXED: "marked fixed",
}


class SessionReviewAdmin(admin.ModelAdmin):
    """The review page and its POST; `ChatSessionAdmin` adds the list, actions and export."""

    panels: list[Panel]

    def _changelist_for(self, request: HttpRequest, query: QueryDict) -> ChangeList:
        """The changelist (filters, search, order) that `query` describes, for `request.user`."""
        list_request = copy.copy(request)
        list_request.method = "GET"
        # The stubs type GET as _ImmutableQueryDict, a class only they have (`query` may be a copy).
        list_request.GET = query  # type: ignore[assignment]
        list_request.POST = QueryDict()
        return self.get_changelist_instance(list_request)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return None
        session = selectors.session_for_review(pk)
        # A trashed session is restored in the dashboard first: here it "does not exist".
        return None if session is None or session.is_deleted else session

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        return []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list:
        return []

    def get_panels(self, request: HttpRequest, session: ChatSession) -> list[Panel]:
        return list(self.panels)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Review posts made to the page's own URL (older pages, scripts) get the review view
        # too: the stock POST handling would save the session through an empty model form.
        if request.method == "POST":
            return self.review_view(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        session: ChatSession = obj
        can_change = self.has_change_permission(request, session)
        claim = self._claim_for_page(request, session, can_change=can_change)
        moves = services.allowed_moves(current=session.qa_status, user=request.user)
        if claim["other"]:
            moves = []  # someone else is deciding it; the service refuses a crafted POST too
        pk = quote(str(session.pk))
        review_form = context.get("qa_review_form") or QAReviewForm(
            initial={"qa_notes": session.qa_notes, "dev_feedback": session.dev_feedback}
        )
        context.update(
            {
                "title": "Review session",
                "session": session,
                "qa_panels": [
                    {"panel": panel, **panel.context(request, session)}
                    for panel in self.get_panels(request, session)
                ],
                "qa_badge": qa_badge(session.qa_status),
                "qa_review_form": review_form,
                "qa_moves": [(m, QA_ACTION_LABELS[m]) for m in moves] if can_change else [],
                "qa_can_review": can_change and services.can_review(request.user),
                "qa_can_fix": can_change and services.can_fix(request.user),
                "qa_claim": claim,
                "qa_version": services.review_version(session),
                "qa_claim_url": reverse("admin:sessions_app_chatsession_claim", args=[pk]),
                "qa_heartbeat_seconds": claims.HEARTBEAT_SECONDS,
                "qa_next_url": self._with_filters(
                    request, reverse("admin:sessions_app_chatsession_next", args=[pk])
                ),
                "qa_previous_url": self._with_filters(
                    request, reverse("admin:sessions_app_chatsession_previous", args=[pk])
                ),
                "qa_can_assign": claims.can_assign(request.user),
                "qa_reviewers": claims.reviewers() if claims.can_assign(request.user) else [],
                "qa_assign_url": self._with_filters(
                    request, reverse("admin:sessions_app_chatsession_assign", args=[pk])
                ),
                "show_save": False,
                "show_save_and_continue": False,
                "show_save_and_add_another": False,
                "show_delete_link": False,
            }
        )
        review_url = reverse("admin:sessions_app_chatsession_review", args=[pk])
        # The stock render adds the preserved changelist filters to the form's action, so
        # "& review next" stays within the reviewer's filter.
        return super().render_change_form(request, context, add, change, review_url, obj)

    def review_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The QA panel's POST: one `qa_review_submit`, then the page, the next session or the
        page again with the refusal and the typed texts."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            # The stock change view's own redirect: a private ModelAdmin method, not in the stubs.
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        form = QAReviewForm(request.POST)
        scorecard_error = ""
        try:
            scorecard = scorecard_input(request.POST)
        except ScorecardInputError as exc:
            scorecard, scorecard_error = None, str(exc)
        if not form.is_valid() or scorecard_error:
            if scorecard_error:
                self.message_user(request, f"Scorecard: {scorecard_error}", messages.ERROR)
            for name, errors in form.errors.items():
                # The button's error says it all; a box's names the box ("QA note: ...").
                prefix = "" if name == "qa_action" else f"{form.fields[name].label}: "
                for error in errors:
                    self.message_user(request, f"{prefix}{error}", messages.ERROR)
            return self._render_review_page(request, session, form)
        data = form.cleaned_data
        try:
            # The scorecard (None when the page showed none) and the move, in one transaction.
            review = scorecard_review_submit(
                session=session,
                by=signed_in_user(request),
                decision=data["decision"],
                qa_note=data["qa_notes"],
                dev_feedback=data["dev_feedback"],
                opened_version=data["qa_version"] or None,
                scorecard=scorecard,
            )
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            # Show the row as it is now (someone may have moved it meanwhile) with what was typed.
            current = self.get_object(request, str(session.pk))
            if current is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
            return self._render_review_page(request, current, form)
        if review.moved_to is not None:
            self.message_user(
                request, f"Session {QA_DONE_LABELS[review.moved_to]}.", messages.SUCCESS
            )
        elif review.texts_saved or review.scorecard_saved:
            saved = {
                (True, False): "Notes saved.",
                (False, True): "Scorecard saved.",
                (True, True): "Notes and scorecard saved.",
            }[(review.texts_saved, review.scorecard_saved)]
            self.message_user(request, saved, messages.SUCCESS)
        if data["review_next"]:
            return self._redirect_to_next(request, session)
        if review.moved_to is not None:
            # The decision released the decider's claim (claims.release_after_decision) so the
            # next one to decide need not wait: the page shown again must not take it back, or a
            # developer who marks a session fixed keeps it from QA's re-check while their page
            # stays open. Opening the session again later claims it as usual.
            request.session[JUST_DECIDED_SESSION_KEY] = session.pk
        return self._redirect_to_change(request, session)

    def _render_review_page(
        self, request: HttpRequest, session: ChatSession, review_form: QAReviewForm
    ) -> HttpResponse:
        """The review page for a refused submit, keeping what was typed (a 200, not a redirect).

        What the stock change view builds for a GET of a form without fields or inlines; the stock
        view itself cannot be asked, since for a POST it would save the model form.
        """
        form = self.get_form(request, session, change=True, fields=[])(instance=session)
        admin_form = helpers.AdminForm(form, [], {}, [], model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "subtitle": str(session),
            "adminform": admin_form,
            "object_id": str(session.pk),
            "original": session,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "qa_review_form": review_form,
        }
        return self.render_change_form(request, context, change=True, obj=session)

    def _redirect_to_change(self, request: HttpRequest, session: ChatSession) -> HttpResponse:
        url = reverse("admin:sessions_app_chatsession_change", args=[session.pk])
        return HttpResponseRedirect(self._with_filters(request, url))

    def _with_filters(self, request: HttpRequest, url: str) -> str:
        return add_preserved_filters(
            {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}, url
        )

    def _claim_for_page(
        self, request: HttpRequest, session: ChatSession, *, can_change: bool
    ) -> dict[str, Any]:
        """Who reviews `session` now; opening the page claims it for a reviewer (or renews their
        claim) unless someone else holds it."""
        now = timezone.now()
        claim = claims.session_claim(session)
        holder = claims.live_holder(claim, now)
        info: dict[str, Any] = {
            "holder": holder,
            "until": claim.claimed_until if claim is not None and holder is not None else None,
            "assigned_to": claim.assigned_to if claim is not None else None,
            "mine": False,
            "other": False,
            "message": "",
        }
        user = request.user
        # One page only: the one shown right after this user's own decision on this session.
        just_decided = request.session.pop(JUST_DECIDED_SESSION_KEY, None) == session.pk
        if holder is not None and holder.pk != user.pk:
            info.update(
                other=True,
                message=f"Being reviewed by {claims.person(holder)} "
                f"(until {claims.clock(info['until'])}).",
            )
            return info
        if just_decided or not (can_change and claims.can_claim(user)):
            return info
        try:
            until = claims.qa_claim(session=session, by=signed_in_user(request), now=now)
        except claims.ClaimHeld as exc:  # taken between the read above and the lock
            info.update(
                holder=exc.holder,
                until=exc.until,
                other=True,
                message=f"Being reviewed by {claims.person(exc.holder)} "
                f"(until {claims.clock(exc.until)}).",
            )
        else:
            info.update(holder=user, until=until, mine=True)
        return info

    def claim_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The review page's heartbeat: renew the reader's claim (JSON). POST, CSRF-checked by
        admin_view, for users who may review; 409 when someone else holds the session."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return JsonResponse({"error": "No such session."}, status=404)
        if not (self.has_change_permission(request, session) and claims.can_claim(request.user)):
            return JsonResponse({"error": "You are not allowed to review sessions."}, status=403)
        try:
            until = claims.qa_claim(session=session, by=signed_in_user(request))
        except claims.ClaimHeld as exc:
            return JsonResponse(
                {"claimed": False, "message": str(exc), "until": exc.until.isoformat()},
                status=409,
            )
        except DomainError as exc:
            return JsonResponse({"claimed": False, "message": str(exc)}, status=409)
        return JsonResponse(
            {"claimed": True, "until": until.isoformat(), "until_clock": claims.clock(until)}
        )

    def assign_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The page's "Assign to" (admins): one `qa_assign`, then the page again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not claims.can_assign(request.user):
            raise PermissionDenied
        try:
            to = self._reviewer_from_post(request)
        except ValueError:
            self.message_user(request, "Choose a reviewer from the list.", messages.ERROR)
            return self._redirect_to_change(request, session)
        try:
            claims.qa_assign(session=session, to=to, by=signed_in_user(request))
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Assigned to {claims.person(to)}." if to else "Assignment removed.",
                messages.SUCCESS,
            )
        return self._redirect_to_change(request, session)

    def _reviewer_from_post(self, request: HttpRequest) -> User | None:
        """The reviewer named by the POST's `assign_to`, None for "nobody" (an empty value).
        Raises ValueError for a value that names no active reviewer."""
        raw = request.POST.get("assign_to", "").strip()
        if not raw:
            return None
        pk = int(raw)  # ValueError for junk, as for an unknown reviewer below
        for user in claims.reviewers():
            if user.pk == pk:
                return user
        raise ValueError(f"No active reviewer with id {pk}.")

    def navigate_view(self, request: HttpRequest, object_id: str, backwards: bool) -> HttpResponse:
        """Next / Previous without deciding (the links and the j / k keys)."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not self.has_view_permission(request, session):
            raise PermissionDenied
        return self._redirect_to_next(request, session, backwards=backwards)

    def next_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self.navigate_view(request, object_id, backwards=False)

    def previous_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self.navigate_view(request, object_id, backwards=True)

    def _redirect_to_next(
        self, request: HttpRequest, session: ChatSession, *, backwards: bool = False
    ) -> HttpResponse:
        """Open the session after (before) `session` in the list the reviewer came from.

        The list is the changelist of `_changelist_filters` (its status filter, search, order),
        minus sessions someone else has claimed. The one found is claimed before the redirect, so
        two reviewers pressing "next" at once land on different sessions.
        """
        filters = QueryDict(request.GET.get("_changelist_filters", ""))
        try:
            changelist = self._changelist_for(request, filters)
        except (IncorrectLookupParameters, SuspiciousOperation):
            # A stale or hand-edited filter falls back to the whole queue.
            changelist = self._changelist_for(request, QueryDict())
        ordering = changelist.get_ordering(request, changelist.queryset)
        user = signed_in_user(request)
        listed = changelist.queryset.filter(
            ~claims.claimed_by_other_expression(user.pk, timezone.now())
        )
        may_claim = claims.can_claim(user)
        tried: list[int] = []
        for _ in range(NAVIGATION_TRIES):
            following = queue.session_beside(
                listed, current=session, ordering=ordering, backwards=backwards, skip_ids=tried
            )
            if following is None:
                break
            if may_claim:
                try:
                    claims.qa_claim(session=following, by=user)
                except (DomainError, ChatSession.DoesNotExist):
                    tried.append(following.pk)  # claimed (or trashed) in the same instant
                    continue
            url = reverse("admin:sessions_app_chatsession_change", args=[following.pk])
            return HttpResponseRedirect(self._with_filters(request, url))
        if backwards:
            self.message_user(request, "This is the first session of the list.", messages.INFO)
            return self._redirect_to_change(request, session)
        self.message_user(
            request,
            "Queue clear: no other session left in this list (sessions someone else is "
            "reviewing are skipped).",
            messages.INFO,
        )
        url = reverse("admin:sessions_app_chatsession_changelist")
        return HttpResponseRedirect(self._with_filters(request, url))
