"""What the daily QA digest says, read at one moment: a fixed number of queries.

- the queue: unchecked sessions as the console's default list shows them (sampled or not
  decided yet, not archived, not in the trash), how many, and the oldest;
- issues open longer than OLD_ISSUE_DAYS (flagged and not marked fixed since);
- fixed sessions awaiting a re-check (QA passes them or flags them again);
- the last seven days' issue rate by failure category (qa.trends, the Trends page's figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from qa.sampling.services import not_sampled_expression
from qa.trends.selectors import DateRange, IssueRates, issue_rates, percent
from sessions_app.models import ArchiveStatus, ChatSession, QAStatus

OLD_ISSUE_DAYS = 3
LIST_LIMIT = 20  # sessions listed per section; the count says how many there are in all


@dataclass(frozen=True)
class DigestSession:
    label: str  # lead name or email, else "anonymous visitor"
    site: str
    since: datetime | None  # started (queue), flagged (issues), marked fixed (re-checks)
    days: int
    note: str  # the QA note (issues) or the developer feedback (fixed)
    url: str


@dataclass(frozen=True)
class Digest:
    now: datetime
    unchecked: int
    oldest_unchecked: DigestSession | None
    old_issues: int
    old_issue_list: list[DigestSession]
    awaiting_recheck: int
    awaiting_list: list[DigestSession]
    week: DateRange
    week_rates: IssueRates
    queue_url: str
    issues_url: str
    fixed_url: str
    trends_url: str

    @property
    def week_rate(self) -> str:
        return percent(self.week_rates.rate)

    @property
    def week_categories(self) -> list[tuple[str, int, str]]:
        """(category, sessions, share of the week's reviewed sessions), most frequent first."""
        reviewed = self.week_rates.reviewed
        rows = [
            (row.name, row.total, percent(row.total / reviewed if reviewed else None))
            for row in self.week_rates.categories
            if row.total
        ]
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    @property
    def subject(self) -> str:
        return (
            f"[leadchat QA] Daily digest {self.now.date():%Y-%m-%d}: {self.unchecked} unchecked, "
            f"{self.old_issues} issue{'s' if self.old_issues != 1 else ''} open > "
            f"{OLD_ISSUE_DAYS} days, {self.awaiting_recheck} fixed to re-check"
        )


def _console(path: str, **query: str) -> str:
    url = f"{settings.PUBLIC_BASE_URL}{path}"
    return f"{url}?{urlencode(query)}" if query else url


def _item(
    session: ChatSession, *, since: datetime | None, note: str, now: datetime
) -> DigestSession:
    return DigestSession(
        label=session.lead_name or session.lead_email or "anonymous visitor",
        site=session.site.name if session.site is not None else "",
        since=since,
        days=(now - since).days if since else 0,
        note=note,
        url=_console(reverse("admin:sessions_app_chatsession_change", args=[session.pk])),
    )


def queue_sessions() -> QuerySet[ChatSession]:
    """The console's default list: unchecked, sampled (or not decided yet), active."""
    return (
        ChatSession.objects.not_deleted()
        .filter(qa_status=QAStatus.UNCHECKED, archive_status=ArchiveStatus.ACTIVE)
        .filter(~not_sampled_expression())
    )


def qa_digest(*, now: datetime | None = None) -> Digest:
    """Seven queries: the queue's count and oldest, each list and its count, the week's rates
    (three)."""
    now = now or timezone.now()
    queue = queue_sessions()
    unchecked = queue.count()
    oldest = queue.select_related("site").order_by("started_at", "pk").first()
    old_before = now - timedelta(days=OLD_ISSUE_DAYS)
    issues = ChatSession.objects.not_deleted().filter(
        qa_status=QAStatus.ISSUE, qa_status_at__lt=old_before
    )
    fixed = ChatSession.objects.not_deleted().filter(qa_status=QAStatus.FIXED)
    old_issue_list = list(issues.select_related("site").order_by("qa_status_at", "pk")[:LIST_LIMIT])
    awaiting_list = list(fixed.select_related("site").order_by("qa_status_at", "pk")[:LIST_LIMIT])
    today = timezone.localdate(now)
    week = DateRange(start=today - timedelta(days=6), end=today)
    changelist = reverse("admin:sessions_app_chatsession_changelist")
    return Digest(
        now=now,
        unchecked=unchecked,
        oldest_unchecked=(
            _item(oldest, since=oldest.started_at, note="", now=now) if oldest else None
        ),
        old_issues=len(old_issue_list) if len(old_issue_list) < LIST_LIMIT else issues.count(),
        old_issue_list=[
            _item(s, since=s.qa_status_at, note=s.qa_notes, now=now) for s in old_issue_list
        ],
        awaiting_recheck=(len(awaiting_list) if len(awaiting_list) < LIST_LIMIT else fixed.count()),
        awaiting_list=[
            _item(s, since=s.qa_status_at, note=s.dev_feedback, now=now) for s in awaiting_list
        ],
        week=week,
        week_rates=issue_rates(week),
        queue_url=_console(changelist),
        issues_url=_console(changelist, qa_status=QAStatus.ISSUE),
        fixed_url=_console(changelist, qa_status=QAStatus.FIXED),
        trends_url=_console(reverse("admin:sessions_app_chatsession_trends")),
    )
