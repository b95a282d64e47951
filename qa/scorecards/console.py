"""The scorecard's parts of the session review page: the QA panel's scorecard, the transcript's
annotations, the annotate POST and the list page's summary line.

`ChatSessionAdmin` uses `ScorecardConsoleMixin` (the annotate URL and view) and the panel
contexts below; the review POST itself stays `SessionReviewAdmin.review_view`, which hands the
scorecard to `services.scorecard_review_submit`.
"""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from accounts.auth import signed_in_user
from qa.admin.panels import transcript_context
from qa.scorecards import forms as card_forms
from qa.scorecards import selectors, services
from qa.scorecards.models import LEAD_FIELDS, CriterionKind, LeadVerdict, Scorecard
from qa.services import can_review
from sessions_app.errors import DomainError
from sessions_app.models import ChatSession, MessageRole

ANNOTATE_FORM_ID = "qa-annotate"


def _lead_values(session: ChatSession) -> dict[str, str]:
    data = session.lead_data if isinstance(session.lead_data, dict) else {}
    need = data.get("need")
    return {
        "name": session.lead_name,
        "email": session.lead_email,
        "phone": session.lead_phone,
        "need": need if isinstance(need, str) else "",
    }


def scorecard_panel_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    """The QA panel's scorecard: the active criteria and categories, the lead fields with their
    verdicts, prefilled from the reviewer's scorecard (or from what a refused POST carried), and
    the other reviewers' scorecards read-only. Five queries, whatever the data."""
    criteria = selectors.active_criteria()
    categories = selectors.active_categories()
    cards = selectors.session_scorecards(session)
    mine: Scorecard | None = next((c for c in cards if c.reviewer_id == request.user.pk), None)
    posted = (
        request.POST if request.method == "POST" and card_forms.MARKER in request.POST else None
    )
    if posted is not None:
        score_of = {c.pk: posted.get(f"{card_forms.SCORE_PREFIX}{c.pk}", "") for c in criteria}
        picked = set(posted.getlist(card_forms.CATEGORY))
        verdict_of = {n: posted.get(f"{card_forms.VERDICT_PREFIX}{n}", "") for n, _ in LEAD_FIELDS}
    else:
        score_of = {s.criterion_id: str(s.value) for s in mine.scores.all()} if mine else {}
        picked = {str(c.pk) for c in mine.categories.all()} if mine else set()
        verdict_of = {n: getattr(mine, f"{n}_verdict") for n, _ in LEAD_FIELDS} if mine else {}
    values = _lead_values(session)
    return {
        "criteria": [
            {
                "criterion": c,
                "field": f"{card_forms.SCORE_PREFIX}{c.pk}",
                "value": score_of.get(c.pk, ""),
                "choices": (
                    [("1", "Pass"), ("0", "Fail")]
                    if c.kind == CriterionKind.PASS_FAIL
                    else [(str(v), str(v)) for v in range(1, 6)]
                ),
            }
            for c in criteria
        ],
        "categories": [{"category": c, "checked": str(c.pk) in picked} for c in categories],
        "lead_fields": [
            {
                "name": name,
                "label": label,
                "field": f"{card_forms.VERDICT_PREFIX}{name}",
                "captured": values[name],
                "verdict": verdict_of.get(name, ""),
            }
            for name, label in LEAD_FIELDS
        ],
        "verdict_choices": LeadVerdict.choices,
        "marker": card_forms.MARKER,
        "category_field": card_forms.CATEGORY,
        "others": [c for c in cards if c is not mine],
        "mine": mine,
    }


def annotated_transcript_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    """The transcript with each AI message's annotations beside it (one query more)."""
    context = transcript_context(request, session)
    by_message: dict[int, list] = {}
    for annotation in selectors.session_annotations(session):
        by_message.setdefault(annotation.message_id, []).append(annotation)
    for row in context["rows"]:
        message = row["message"]
        row["annotations"] = by_message.get(message.pk, [])
        row["annotatable"] = message.role == MessageRole.AI
    context["can_annotate"] = can_review(request.user)
    context["annotate_form_id"] = ANNOTATE_FORM_ID
    return context


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def summary_context() -> dict[str, Any]:
    summary = selectors.qa_summary()
    return {
        "qa_summary": summary,
        "qa_pass_rate": _percent(summary.pass_rate),
        "qa_lead_accuracy": _percent(summary.lead_accuracy),
    }


class ScorecardConsoleMixin(admin.ModelAdmin):
    """The annotate URL and view of the session admin (`<id>/annotate/`)."""

    def scorecard_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/annotate/",
                self.admin_site.admin_view(self.annotate_view),
                name="{}_{}_annotate".format(*info),
            )
        ]

    def annotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One annotation: the pressed button names the message, its boxes carry the texts."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)  # type: ignore[attr-defined]
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        # Back to the page with the reviewer's list filter, so "& review next" still follows it.
        url = add_preserved_filters(
            {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts},
            reverse("admin:sessions_app_chatsession_change", args=[session.pk]),
        )
        raw_id = request.POST.get("message", "")
        try:
            message_id = int(raw_id)
        except ValueError:
            self.message_user(request, "Choose the AI message to annotate.", messages.ERROR)
            return HttpResponseRedirect(url)
        try:
            services.annotation_add(
                session=session,
                message_id=message_id,
                by=signed_in_user(request),
                note=request.POST.get(f"note_{message_id}", ""),
                expected_reply=request.POST.get(f"expected_{message_id}", ""),
            )
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(url)
        self.message_user(request, "Annotation added.", messages.SUCCESS)
        return HttpResponseRedirect(f"{url}#message-{message_id}")
