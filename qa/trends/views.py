"""The console's QA Trends page (`/admin/sessions_app/chatsession/trends/`), for QA reviewers and
admins. Wired by `TrendsConsoleMixin` on ChatSessionAdmin; figures from qa.trends.selectors,
laid out here as plain rows and cells so the template only prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from qa.services import can_review
from qa.trends import selectors
from qa.trends.selectors import DateRange, RangeError, Trends, percent, qa_trends


@dataclass(frozen=True)
class Cell:
    text: str
    rate: float | None = None  # drawn as a small bar (a <meter>) when set
    title: str = ""


@dataclass(frozen=True)
class Row:
    name: str
    cells: list[Cell]


def _hours(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


def _rate_cell(part: int, whole: int) -> Cell:
    rate = part / whole if whole else None
    return Cell(percent(rate), rate, f"{part} of {whole}" if whole else "nothing reviewed")


def _week_label(week: date) -> str:
    return f"{week:%d %b}"


def category_rows(trends: Trends) -> list[Row]:
    issues = trends.issues
    rows = [
        Row(
            "Any issue (flagged)",
            [
                _rate_cell(issues.flagged_by_week.get(w, 0), issues.reviewed_by_week.get(w, 0))
                for w in issues.weeks
            ]
            + [_rate_cell(issues.flagged, issues.reviewed)],
        )
    ]
    for category in issues.categories:
        rows.append(
            Row(
                category.name,
                [
                    _rate_cell(category.by_week.get(w, 0), issues.reviewed_by_week.get(w, 0))
                    for w in issues.weeks
                ]
                + [_rate_cell(category.total, issues.reviewed)],
            )
        )
    rows.append(
        Row(
            "Reviewed sessions",
            [Cell(str(issues.reviewed_by_week.get(w, 0))) for w in issues.weeks]
            + [Cell(str(issues.reviewed))],
        )
    )
    return rows


def lead_rows(trends: Trends) -> list[Row]:
    leads = trends.leads
    rows = []
    for item in leads.fields:
        rows.append(
            Row(
                item.label,
                [
                    _rate_cell(item.verdicts.get("correct", 0), item.judged),
                    Cell(str(item.judged)),
                    Cell(str(item.verdicts.get("wrong", 0))),
                    Cell(str(item.verdicts.get("missing", 0))),
                    Cell(str(item.verdicts.get("invented", 0))),
                ],
            )
        )
    return rows


def lead_week_cells(trends: Trends) -> list[Cell]:
    leads = trends.leads
    return [
        _rate_cell(leads.correct_by_week.get(w, 0), leads.judged_by_week.get(w, 0))
        for w in leads.weeks
    ] + [_rate_cell(leads.correct, leads.judged)]


def throughput_rows(trends: Trends) -> list[Row]:
    weeks = trends.throughput.weeks
    return [
        Row(
            reviewer.name,
            [Cell(str(reviewer.by_week.get(w, 0))) for w in weeks]
            + [Cell(str(reviewer.total)), Cell(str(reviewer.issues))],
        )
        for reviewer in trends.throughput.reviewers
    ]


def trends_context(trends: Trends) -> dict[str, Any]:
    cycles = trends.cycles
    category_names = [c.name for c in trends.issues.categories]
    versions = [
        {
            "label": v.label,
            "first_seen": v.first_seen,
            "reviewed": v.reviewed,
            "flagged": v.flagged,
            "rate": _rate_cell(v.flagged, v.reviewed),
            "categories": [
                _rate_cell(v.categories.get(name, 0), v.reviewed) for name in category_names
            ],
        }
        for v in trends.versions
    ]
    return {
        "trends": trends,
        "weeks": [_week_label(w) for w in trends.issues.weeks],
        "category_rows": category_rows(trends),
        "category_names": category_names,
        "versions": versions,
        "lead_rows": lead_rows(trends),
        "lead_total": _rate_cell(trends.leads.correct, trends.leads.judged),
        "lead_week_cells": lead_week_cells(trends),
        "cycles": cycles,
        "cycle_figures": {
            "to_fixed": _hours(cycles.median_to_fixed),
            "to_verified": _hours(cycles.median_to_verified),
            "total": _hours(cycles.median_total),
        },
        "throughput_rows": throughput_rows(trends),
    }


class TrendsConsoleMixin:
    """ChatSessionAdmin's Trends URL and view."""

    admin_site: Any
    opts: Any

    def trends_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "trends/",
                self.admin_site.admin_view(self.trends_view),
                name="{}_{}_trends".format(*info),
            )
        ]

    def trends_view(self, request: HttpRequest) -> HttpResponse:
        # QA reviewers and admins (superusers hold every permission); admin_view already sent
        # anyone without staff access (agents) to the login page.
        if not can_review(request.user):
            raise PermissionDenied
        error = ""
        status = 200
        start, end = request.GET.get("start"), request.GET.get("end")
        try:
            period = selectors.parse_range(start, end)
        except RangeError as refused:
            error, status = str(refused), 400
            period = selectors.default_range()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "QA trends",
            "error": error,
            "period": period,
            "start_value": (start or "")[:20] if error else period.start.isoformat(),
            "end_value": (end or "")[:20] if error else period.end.isoformat(),
            **trends_context(qa_trends(period)),
        }
        return TemplateResponse(request, "admin/qa/trends.html", context, status=status)


__all__ = ["DateRange", "TrendsConsoleMixin", "trends_context"]
