"""Reads of scorecards and annotations, each a fixed number of queries whatever the data."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from qa.scorecards.models import (
    LEAD_FIELDS,
    Criterion,
    CriterionScore,
    FailureCategory,
    LeadVerdict,
    MessageAnnotation,
    Scorecard,
)
from sessions_app.models import ChatSession, QAStatus

# A change view shows at most this many annotations (one runaway session must stay one page).
ANNOTATIONS_LIMIT = 500
REVIEWED_STATUSES = (QAStatus.PASSED, QAStatus.ISSUE, QAStatus.FIXED)


def active_criteria() -> list[Criterion]:
    return list(Criterion.objects.filter(active=True).order_by("order", "name"))


def active_categories() -> list[FailureCategory]:
    return list(FailureCategory.objects.filter(active=True).order_by("order", "name"))


def scorecards_prefetched(queryset: QuerySet[Scorecard]) -> QuerySet[Scorecard]:
    """Scorecards with their reviewer, scores (and criteria) and categories: three queries."""
    return queryset.select_related("reviewer").prefetch_related(
        Prefetch(
            "scores",
            queryset=CriterionScore.objects.select_related("criterion").order_by(
                "criterion__order", "criterion__name"
            ),
        ),
        Prefetch("categories", queryset=FailureCategory.objects.order_by("order", "name")),
    )


def session_scorecards(session: ChatSession) -> list[Scorecard]:
    """Every reviewer's scorecard of `session`, oldest first."""
    return list(
        scorecards_prefetched(Scorecard.objects.filter(session=session)).order_by(
            "created_at", "id"
        )
    )


def session_annotations(
    session: ChatSession, limit: int = ANNOTATIONS_LIMIT
) -> list[MessageAnnotation]:
    return list(
        MessageAnnotation.objects.filter(session=session)
        .select_related("by")
        .order_by("at", "id")[:limit]
    )


def export_prefetches() -> "list[Prefetch[Any]]":
    """What the QA export needs per session, fetched once per chunk (no per-row queries)."""
    return [
        Prefetch(
            "scorecards",
            queryset=scorecards_prefetched(Scorecard.objects.order_by("created_at", "id")),
        ),
        Prefetch(
            "annotations",
            queryset=MessageAnnotation.objects.select_related("by", "message").order_by("at", "id"),
        ),
    ]


@dataclass(frozen=True)
class QASummary:
    """The console's summary line: pass rate and lead extraction accuracy."""

    reviewed: int  # sessions passed, flagged or fixed
    passed: int
    judged_fields: int  # lead fields with a verdict, over every scorecard
    correct_fields: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.reviewed if self.reviewed else None

    @property
    def lead_accuracy(self) -> float | None:
        return self.correct_fields / self.judged_fields if self.judged_fields else None


def qa_summary() -> QASummary:
    """Pass rate (passed / reviewed) and lead extraction accuracy (correct / judged lead
    fields) of the sessions not in the trash: two queries.

    Both read only what people reviewed (the qa_status index leaves unchecked rows out, and a
    scorecard exists only where a reviewer scored), which grows with the team's work, not with
    traffic, so the list page never counts its whole table (see qa.paginator).
    """
    by_status = dict(
        ChatSession.objects.not_deleted()
        .filter(qa_status__in=REVIEWED_STATUSES)
        .order_by()
        .values_list("qa_status")
        .annotate(n=Count("pk"))
        .values_list("qa_status", "n")
    )
    judged = {}
    correct = {}
    for name, _label in LEAD_FIELDS:
        column = f"{name}_verdict"
        judged[f"judged_{name}"] = Count("pk", filter=~Q(**{column: ""}))
        correct[f"correct_{name}"] = Count("pk", filter=Q(**{column: LeadVerdict.CORRECT}))
    counts = Scorecard.objects.filter(session__deleted_at__isnull=True).aggregate(
        **judged, **correct
    )
    return QASummary(
        reviewed=sum(by_status.values()),
        passed=by_status.get(QAStatus.PASSED, 0),
        judged_fields=sum(counts[key] or 0 for key in judged),
        correct_fields=sum(counts[key] or 0 for key in correct),
    )
