"""The QA trends: issue rate by failure category per week and by agent version, lead extraction
accuracy, time from issue to fixed to verified, reviewer throughput. Also the digest's "the
week's issue rate by category" (qa.digest), so the two never disagree.

What the figures count:
- a session belongs to the week (Monday, in TIME_ZONE) it started in: an agent change shows in
  the weeks after it, whenever the review happened;
- reviewed: its QA status is passed, issue or fixed (not in the trash);
- flagged: it was ever moved to issue (a history row), so a fixed or re-verified session still
  counts as the issue it was;
- a category's rate: reviewed sessions whose scorecards name it / reviewed sessions;
- lead accuracy: lead fields judged "correct" / lead fields judged, over the scorecards of the
  range's sessions;
- the fix cycle, from each session's QA moves: flagged -> fixed -> passed (verified), counted
  in the week it was flagged; a re-flag of a fixed session ends that cycle unverified;
- reviewer throughput: moves to passed or issue (the reviewers' decisions) per person and week of
  the decision.

Every figure is a fixed number of grouped queries (no query per session, week, category or
reviewer), so the page costs the same at 10 and at 10,000 sessions.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from qa.models import QAHistory
from qa.scorecards.models import LEAD_FIELDS, FailureCategory, LeadVerdict, Scorecard
from sessions_app.models import ChatMessage, ChatSession, MessageRole, QAStatus

REVIEWED_STATUSES = (QAStatus.PASSED, QAStatus.ISSUE, QAStatus.FIXED)
DECISION_STATUSES = (QAStatus.PASSED, QAStatus.ISSUE)
MAX_RANGE_DAYS = 366
DEFAULT_WEEKS = 8


class RangeError(ValueError):
    """A date range the page cannot show (its message is for the person who typed it)."""


@dataclass(frozen=True)
class DateRange:
    """From `start` to `end`, both days included, in TIME_ZONE."""

    start: date
    end: date

    @property
    def start_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def end_before(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def weeks(self) -> list[date]:
        """The Mondays of the weeks the range touches, oldest first."""
        monday = self.start - timedelta(days=self.start.weekday())
        weeks = []
        while monday <= self.end:
            weeks.append(monday)
            monday += timedelta(days=7)
        return weeks


def default_range(today: date | None = None) -> DateRange:
    today = today or timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    return DateRange(start=monday - timedelta(weeks=DEFAULT_WEEKS - 1), end=today)


def parse_range(start: str | None, end: str | None, *, today: date | None = None) -> DateRange:
    """The range of the page's filter ("YYYY-MM-DD"); a blank bound takes the default's."""
    fallback = default_range(today)

    def day(value: str | None, default: date, name: str) -> date:
        if not value or not value.strip():
            return default
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise RangeError(f"The {name} date must be written YYYY-MM-DD.") from None

    first = day(start, fallback.start, "start")
    last = day(end, fallback.end, "end")
    if first > last:
        raise RangeError("The start date is after the end date.")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise RangeError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
    return DateRange(start=first, end=last)


def _week(value: datetime | date | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.date()
    return value


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percent(rate: float | None) -> str:
    """ "12.5%" (one decimal, none when whole); "-" when there is nothing to divide by."""
    if rate is None:
        return "-"
    value = round(rate * 100, 1)
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def _flagged() -> Exists:
    return Exists(
        QAHistory.objects.filter(
            session=OuterRef("pk"), kind=QAHistory.Kind.MOVE, to_status=QAStatus.ISSUE
        )
    )


def reviewed_sessions(period: DateRange) -> QuerySet[ChatSession]:
    return ChatSession.objects.not_deleted().filter(
        started_at__gte=period.start_at,
        started_at__lt=period.end_before,
        qa_status__in=REVIEWED_STATUSES,
    )


# --- Issue rate by category ---------------------------------------------------------------------


@dataclass
class CategoryRow:
    name: str
    total: int  # reviewed sessions of the range with this category
    by_week: dict[date, int] = field(default_factory=dict)


@dataclass
class IssueRates:
    weeks: list[date]
    reviewed: int
    flagged: int
    reviewed_by_week: dict[date, int]
    flagged_by_week: dict[date, int]
    categories: list[CategoryRow]

    @property
    def rate(self) -> float | None:
        return _rate(self.flagged, self.reviewed)

    def week_rate(self, week: date) -> float | None:
        return _rate(self.flagged_by_week.get(week, 0), self.reviewed_by_week.get(week, 0))


def issue_rates(period: DateRange) -> IssueRates:
    """Three queries: reviewed and flagged per week, category per week, the category names."""
    reviewed = reviewed_sessions(period)
    reviewed_by_week: dict[date, int] = {}
    flagged_by_week: dict[date, int] = {}
    for row in (
        reviewed.annotate(week=TruncWeek("started_at"))
        .order_by()
        .values("week")
        .annotate(n=Count("pk"), flagged=Count("pk", filter=_flagged()))
    ):
        week = _week(row["week"])
        assert week is not None
        reviewed_by_week[week] = row["n"]
        flagged_by_week[week] = row["flagged"]
    # The scorecard <-> category table Django made for the M2M (the stubs cannot see its fields).
    through: Any = Scorecard.categories.through
    per_category: dict[int, dict[date, int]] = defaultdict(dict)
    totals: dict[int, int] = {}
    for row in (
        through.objects.filter(scorecard__session__in=reviewed)
        .annotate(week=TruncWeek("scorecard__session__started_at"))
        .order_by()
        .values("failurecategory_id", "week")
        .annotate(n=Count("scorecard__session_id", distinct=True))
    ):
        week = _week(row["week"])
        assert week is not None
        per_category[row["failurecategory_id"]][week] = row["n"]
    # A session named under one category by two reviewers in two weeks cannot happen (a
    # session has one week), so the week counts add up to the range's count.
    for category_id, weeks in per_category.items():
        totals[category_id] = sum(weeks.values())
    categories = [
        CategoryRow(name=c.name, total=totals.get(c.pk, 0), by_week=per_category.get(c.pk, {}))
        for c in FailureCategory.objects.order_by("order", "name")
        if c.active or c.pk in totals
    ]
    return IssueRates(
        weeks=period.weeks(),
        reviewed=sum(reviewed_by_week.values()),
        flagged=sum(flagged_by_week.values()),
        reviewed_by_week=reviewed_by_week,
        flagged_by_week=flagged_by_week,
        categories=categories,
    )


# --- By agent version ---------------------------------------------------------------------------


@dataclass
class VersionRow:
    backend: str
    model: str
    config_hash: str
    first_seen: datetime | None
    reviewed: int
    flagged: int
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not (self.backend or self.model or self.config_hash):
            return "(not recorded)"
        return f"{self.backend or '-'} · {self.model or '-'} · {self.config_hash or '-'}"

    @property
    def rate(self) -> float | None:
        return _rate(self.flagged, self.reviewed)


_VERSION = ("agent_backend", "agent_model", "agent_config_hash")


def issue_rates_by_version(period: DateRange) -> list[VersionRow]:
    """Reviewed sessions of the range per agent version that answered in them (a session
    answered by two versions counts under both), oldest version first. Two queries."""
    messages = ChatMessage.objects.filter(
        role=MessageRole.AI, session__in=reviewed_sessions(period)
    )
    flagged = Exists(
        QAHistory.objects.filter(
            session=OuterRef("session_id"), kind=QAHistory.Kind.MOVE, to_status=QAStatus.ISSUE
        )
    )
    rows: dict[tuple[str, str, str], VersionRow] = {}
    for row in (
        messages.order_by()
        .values(*_VERSION)
        .annotate(
            reviewed=Count("session_id", distinct=True),
            flagged=Count("session_id", distinct=True, filter=flagged),
            first_seen=Min("created_at"),
        )
    ):
        key = (row["agent_backend"], row["agent_model"], row["agent_config_hash"])
        rows[key] = VersionRow(*key, row["first_seen"], row["reviewed"], row["flagged"])
    for row in (
        messages.filter(session__scorecards__categories__isnull=False)
        .order_by()
        .values(*_VERSION, "session__scorecards__categories__name")
        .annotate(n=Count("session_id", distinct=True))
    ):
        key = (row["agent_backend"], row["agent_model"], row["agent_config_hash"])
        if key in rows:
            rows[key].categories[row["session__scorecards__categories__name"]] = row["n"]
    far_future = timezone.make_aware(datetime.max - timedelta(days=2))
    return sorted(rows.values(), key=lambda r: (r.first_seen or far_future, r.label))


# --- Lead extraction accuracy -------------------------------------------------------------------


@dataclass
class FieldAccuracy:
    name: str
    label: str
    judged: int
    verdicts: dict[str, int]

    @property
    def accuracy(self) -> float | None:
        return _rate(self.verdicts.get(LeadVerdict.CORRECT, 0), self.judged)


@dataclass
class LeadAccuracy:
    weeks: list[date]
    fields: list[FieldAccuracy]
    judged_by_week: dict[date, int]
    correct_by_week: dict[date, int]

    @property
    def judged(self) -> int:
        return sum(f.judged for f in self.fields)

    @property
    def correct(self) -> int:
        return sum(f.verdicts.get(LeadVerdict.CORRECT, 0) for f in self.fields)

    @property
    def accuracy(self) -> float | None:
        return _rate(self.correct, self.judged)

    def week_accuracy(self, week: date) -> float | None:
        return _rate(self.correct_by_week.get(week, 0), self.judged_by_week.get(week, 0))


def lead_accuracy(period: DateRange) -> LeadAccuracy:
    """Verdicts on the lead fields of the range's sessions (every reviewer's scorecard): one
    query, grouped by week."""
    aggregates: dict[str, Any] = {}
    for name, _label in LEAD_FIELDS:
        column = f"{name}_verdict"
        for verdict in LeadVerdict.values:
            aggregates[f"{name}__{verdict}"] = Count("pk", filter=Q(**{column: verdict}))
    counts: dict[str, int] = defaultdict(int)
    judged_by_week: dict[date, int] = {}
    correct_by_week: dict[date, int] = {}
    rows: Any = (
        Scorecard.objects.filter(
            session__deleted_at__isnull=True,
            session__started_at__gte=period.start_at,
            session__started_at__lt=period.end_before,
        )
        .annotate(week=TruncWeek("session__started_at"))
        .order_by()
        .values("week")
        .annotate(**aggregates)
    )
    for row in rows:
        week = _week(row["week"])
        assert week is not None
        judged = correct = 0
        for key in aggregates:
            counts[key] += row[key]
            judged += row[key]
            if key.endswith(f"__{LeadVerdict.CORRECT}"):
                correct += row[key]
        judged_by_week[week] = judged
        correct_by_week[week] = correct
    fields = []
    for name, label in LEAD_FIELDS:
        verdicts = {v: counts[f"{name}__{v}"] for v in LeadVerdict.values}
        fields.append(FieldAccuracy(name, label, sum(verdicts.values()), verdicts))
    return LeadAccuracy(period.weeks(), fields, judged_by_week, correct_by_week)


# --- Issue -> fixed -> verified -----------------------------------------------------------------


@dataclass
class FixCycles:
    flagged: int = 0
    fixed: int = 0
    verified: int = 0
    reflagged: int = 0  # fixed, then flagged again: the fix did not hold
    to_fixed_hours: list[float] = field(default_factory=list)
    to_verified_hours: list[float] = field(default_factory=list)  # fixed -> verified
    total_hours: list[float] = field(default_factory=list)  # flagged -> verified

    @staticmethod
    def _median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    @property
    def median_to_fixed(self) -> float | None:
        return self._median(self.to_fixed_hours)

    @property
    def median_to_verified(self) -> float | None:
        return self._median(self.to_verified_hours)

    @property
    def median_total(self) -> float | None:
        return self._median(self.total_hours)

    @property
    def open_issues(self) -> int:
        return self.flagged - self.fixed

    @property
    def awaiting_recheck(self) -> int:
        return self.fixed - self.verified - self.reflagged


def _hours(since: datetime, until: datetime) -> float:
    return (until - since).total_seconds() / 3600


def fix_cycles(period: DateRange) -> FixCycles:
    """Fix cycles flagged within the range, from the QA history: one query, walked in order.

    Reads the moves (not the session's current status): the history is written with every move,
    so it holds the times the status fields overwrite.
    """
    flagged_in_range = QAHistory.objects.filter(
        kind=QAHistory.Kind.MOVE,
        to_status=QAStatus.ISSUE,
        at__gte=period.start_at,
        at__lt=period.end_before,
        session__deleted_at__isnull=True,
    ).values("session_id")
    moves = (
        QAHistory.objects.filter(kind=QAHistory.Kind.MOVE, session_id__in=flagged_in_range)
        .order_by("session_id", "at", "id")
        .values_list("session_id", "from_status", "to_status", "at")
    )
    cycles = FixCycles()
    current_session = None
    flagged_at: datetime | None = None
    fixed_at: datetime | None = None

    for session_id, from_status, to_status, at in moves.iterator(chunk_size=2000):
        if session_id != current_session:
            current_session, flagged_at, fixed_at = session_id, None, None
        if to_status == QAStatus.ISSUE:
            if fixed_at is not None and flagged_at is not None:
                cycles.reflagged += 1
            # Only cycles that start in the range count (an older one only sets the clock).
            counted = period.start_at <= at < period.end_before
            flagged_at, fixed_at = (at if counted else None), None
            if counted:
                cycles.flagged += 1
        elif to_status == QAStatus.FIXED and flagged_at is not None and fixed_at is None:
            fixed_at = at
            cycles.fixed += 1
            cycles.to_fixed_hours.append(_hours(flagged_at, at))
        elif (
            to_status == QAStatus.PASSED
            and from_status == QAStatus.FIXED
            and flagged_at is not None
            and fixed_at is not None
        ):
            cycles.verified += 1
            cycles.to_verified_hours.append(_hours(fixed_at, at))
            cycles.total_hours.append(_hours(flagged_at, at))
            flagged_at, fixed_at = None, None
    return cycles


# --- Reviewer throughput ------------------------------------------------------------------------


@dataclass
class ReviewerRow:
    name: str
    by_week: dict[date, int] = field(default_factory=dict)
    issues: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_week.values())


@dataclass
class Throughput:
    weeks: list[date]
    reviewers: list[ReviewerRow]


def reviewer_throughput(period: DateRange) -> Throughput:
    """Decisions (moves to passed or issue) per reviewer and week of the decision: one query."""
    rows: dict[str, ReviewerRow] = {}
    for row in (
        QAHistory.objects.filter(
            kind=QAHistory.Kind.MOVE,
            to_status__in=DECISION_STATUSES,
            by__isnull=False,
            at__gte=period.start_at,
            at__lt=period.end_before,
        )
        .annotate(week=TruncWeek("at"))
        .order_by()
        .values("by__username", "week")
        .annotate(n=Count("pk"), issues=Count("pk", filter=Q(to_status=QAStatus.ISSUE)))
    ):
        week = _week(row["week"])
        assert week is not None
        reviewer = rows.setdefault(row["by__username"], ReviewerRow(row["by__username"]))
        reviewer.by_week[week] = row["n"]
        reviewer.issues += row["issues"]
    ordered = sorted(rows.values(), key=lambda r: (-r.total, r.name))
    return Throughput(weeks=period.weeks(), reviewers=ordered)


@dataclass
class Trends:
    period: DateRange
    issues: IssueRates
    versions: list[VersionRow]
    leads: LeadAccuracy
    cycles: FixCycles
    throughput: Throughput


def qa_trends(period: DateRange) -> Trends:
    return Trends(
        period=period,
        issues=issue_rates(period),
        versions=issue_rates_by_version(period),
        leads=lead_accuracy(period),
        cycles=fix_cycles(period),
        throughput=reviewer_throughput(period),
    )
