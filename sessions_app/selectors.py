"""Reads of chat sessions that more than one place needs (STYLE.md: selectors for reads).

The staff API, the dashboard pages, the export streams and the `export_sessions` command all
filter through `sessions_filter`, so "the same filters" means the same SQL everywhere. Each
selector is written once with its `select_related` / annotations, so no caller runs a query per
row; the tests pin the query counts.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Left, Lower, StrIndex
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from sessions_app.models import (
    ArchiveStatus,
    AutomationError,
    Channel,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    Delivery,
    MessageRole,
    QAStatus,
    SessionRollup,
    WidgetOpening,
)
from sessions_app.rollups import FIGURES as ROLLUP_FIGURES
from sessions_app.rollups import bucket_of

# Orderings a client may ask for; anything else is refused (never passed to order_by as is).
SESSION_ORDERINGS = (
    "started_at",
    "last_activity_at",
    "updated_at",
    "message_count",
    "lead_name",
    "lead_email",
    "completion_status",
    "qa_status",
)
DEFAULT_ORDERING = "-started_at"

# What the "archive" filter accepts: the default list hides archived sessions.
ARCHIVE_ALL = "all"
ARCHIVE_CHOICES = (ArchiveStatus.ACTIVE, ArchiveStatus.ARCHIVED, ARCHIVE_ALL)

# The changes feed re-sends rows changed within this window on every poll. `updated_at` is
# stamped by the app server when a transaction starts, so a transaction that commits after a
# poll can carry a timestamp older than that poll's cursor; clocks of several web hosts also
# drift a little. Re-reading a short window catches both; the client ignores rows it already has.
CHANGES_OVERLAP = timedelta(seconds=15)
CHANGES_LIMIT = 200


@dataclass(frozen=True)
class SessionFilters:
    """The filters of session lists, exports and the changes feed (already validated)."""

    completion: tuple[str, ...] = ()
    archive: str = ArchiveStatus.ACTIVE
    trash: bool = False
    qa_status: tuple[str, ...] = ()
    site: int | None = None
    channel: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    has_lead: bool | None = None
    needs_human: bool | None = None
    search: str = ""
    ordering: str = DEFAULT_ORDERING
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(timezone.get_current_timezone_name()))


def day_bounds(date_from: date, date_to: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of date_from, start of the day after date_to) as aware datetimes in `tz`."""
    start = datetime.combine(date_from, time.min, tzinfo=tz)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def error_count_subquery(*, unresolved_only: bool) -> Coalesce:
    """The outer session's automation errors (only the unresolved ones with `unresolved_only`)
    counted by a correlated subquery; 0 when it has none.

    The dashboard and the staff API count the open errors (what still needs a look); the
    exports and the QA console count every error the session had. A subquery rather than
    Count() over a join: it runs only for the rows fetched (the index on
    automationerror.session_id answers it), the list stays one row per session without a GROUP
    BY over every selected column, and the paginator's COUNT drops it.
    """
    errors = AutomationError.objects.filter(session=OuterRef("pk"))
    if unresolved_only:
        errors = errors.filter(resolved=False)
    per_session = errors.order_by().values("session").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(per_session, output_field=IntegerField()), 0)


# Any queryset of sessions (ChatSessionQuerySet included), given back as the same kind.
_SessionsT = TypeVar("_SessionsT", bound="QuerySet[ChatSession]")


def sessions_filter(filters: SessionFilters, *, human_first: bool = False) -> QuerySet[ChatSession]:
    """Sessions matching `filters`, ordered, with what a list row shows joined in.

    `human_first` (the session lists: dashboard and staff API) puts the sessions whose visitor
    waits for a person first, whatever the order asked for; exports keep the plain order.
    """
    qs = ChatSession.objects.all()
    if filters.trash:
        qs = qs.deleted()
    else:
        qs = qs.not_deleted()
        if filters.archive != ARCHIVE_ALL:
            qs = qs.filter(archive_status=filters.archive)
    if filters.completion:
        qs = qs.filter(completion_status__in=filters.completion)
    if filters.qa_status:
        qs = qs.filter(qa_status__in=filters.qa_status)
    if filters.site is not None:
        qs = qs.filter(site_id=filters.site)
    if filters.channel:
        qs = qs.filter(channel__in=filters.channel)
    if filters.date_from is not None:
        start, _ = day_bounds(filters.date_from, filters.date_from, filters.tz)
        qs = qs.filter(started_at__gte=start)
    if filters.date_to is not None:
        _, end = day_bounds(filters.date_to, filters.date_to, filters.tz)
        qs = qs.filter(started_at__lt=end)
    if filters.has_lead is not None:
        has_lead = Q(completion_status=CompletionStatus.COMPLETE)
        qs = qs.filter(has_lead if filters.has_lead else ~has_lead)
    if filters.needs_human is not None:
        qs = qs.filter(needs_human=filters.needs_human)
    if filters.search:
        qs = sessions_search(qs, filters.search)
    order = session_ordering(filters.ordering or DEFAULT_ORDERING)
    if human_first:
        # Visitors waiting for a person come first: they are what an agent must see (the
        # default order has its index, session_visible_human_first).
        order = [F("needs_human").desc(), *order]
    return (
        qs.select_related("site")
        .annotate(error_count=error_count_subquery(unresolved_only=True))
        .order_by(*order)
    )


# Orderings on text a visitor may never have given: anonymous visitors (no name, no email) go
# last in both directions, and letters sort regardless of case ("ana" beside "Ana", not after
# "Zoe"), so "Lead name A-Z" starts with the leads, not with a page of "Anonymous visitor".
BLANK_LAST_ORDERINGS = ("lead_name", "lead_email")


def session_ordering(ordering: str) -> list[Any]:
    """ORDER BY terms for one of SESSION_ORDERINGS ('-' for descending), with a tiebreak."""
    descending = ordering.startswith("-")
    name = ordering.removeprefix("-")
    tiebreak = "-id" if descending else "id"
    if name not in BLANK_LAST_ORDERINGS:
        return [ordering, tiebreak]
    blank = Case(
        When(Q(**{name: ""}) | Q(**{f"{name}__isnull": True}), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    text = Lower(name)
    return [
        blank.asc(),
        text.desc() if descending else text.asc(),
        ordering,
        tiebreak,
    ]


_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)


def sessions_search(queryset: _SessionsT, search: str) -> _SessionsT:
    """The sessions of `queryset` in which every word of `search` is found: each word in the
    lead name, the lead email or any message of the transcript (case-insensitive, anywhere in
    the text), or, for a word that is a session id, that session. The dashboard, the staff API,
    the exports and the QA console all search through here.

    Each word is a UNION of three pk selects, each answered by its trigram index
    (qa/migrations/0002) on PostgreSQL, rather than an OR across an EXISTS over the messages:
    PostgreSQL can only answer that OR by walking the sessions and probing the transcript of
    each, about 200 ms at 100,000 sessions / 1,000,000 messages (bench/results.md) against a
    few ms this way. A UNION has no duplicates, so the result needs no DISTINCT.
    """
    for word in search.split():
        by_name = ChatSession.objects.filter(lead_name__icontains=word).order_by().values("pk")
        by_email = ChatSession.objects.filter(lead_email__icontains=word).order_by().values("pk")
        by_message = (
            ChatMessage.objects.filter(text__icontains=word).order_by().values("session_id")
        )
        match = Q(pk__in=by_name.union(by_email, by_message))
        if _UUID.match(word):
            match |= Q(public_id=word)
        queryset = queryset.filter(match)
    return queryset


def human_requests_waiting(*, requested_before: datetime, limit: int) -> list[ChatSession]:
    """Open requests for a person made before `requested_before` and not emailed yet, oldest
    first, site joined (the handoff email job; index session_human_waiting)."""
    return list(
        ChatSession.objects.filter(
            needs_human=True,
            human_notified_at__isnull=True,
            human_requested_at__lte=requested_before,
            deleted_at__isnull=True,
        )
        .select_related("site")
        .order_by("human_requested_at", "pk")[:limit]
    )


def conversation_session(*, channel: str, external_id: str) -> ChatSession | None:
    """The session of a conversation that lives on another channel, by its id there.

    Also from the trash: a conversation keeps its one session, and message_add refuses to
    write to it until it is restored.
    """
    try:  # unique by its constraint: get() needs no ORDER BY, first() would add one
        return ChatSession.objects.select_related("site").get(
            channel=channel, external_id=external_id
        )
    except ChatSession.DoesNotExist:
        return None


def session_detail(*, public_id: Any) -> ChatSession:
    """One session (also from the trash) with its transcript and automation errors.

    Raises ChatSession.DoesNotExist. Three queries whatever the transcript's length.
    """
    return (
        ChatSession.objects.select_related(
            "site",
            "archived_by",
            "deleted_by",
            "qa_status_by",
            "qa_notes_by",
            "dev_feedback_by",
            "held_by",
        )
        .annotate(error_count=error_count_subquery(unresolved_only=True))
        .prefetch_related(
            Prefetch(
                "messages",
                queryset=ChatMessage.objects.select_related("sent_by").order_by("created_at", "id"),
            ),
            Prefetch(
                "automation_errors",
                queryset=AutomationError.objects.select_related("resolved_by").order_by(
                    "-created_at", "-id"
                ),
            ),
        )
        .get(public_id=public_id)
    )


# --- Changes feed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangesCursor:
    """Position in the feed: rows with (updated_at, id) greater than this come next."""

    updated_at: datetime
    pk: int = 0

    def encode(self) -> str:
        micros = int(self.updated_at.timestamp() * 1_000_000)
        return f"{micros}-{self.pk}"

    @classmethod
    def decode(cls, raw: str) -> ChangesCursor:
        """Parse an encoded cursor; raises ValueError on anything else."""
        micros, sep, pk = raw.partition("-")
        if not sep or not micros.isdigit() or not pk.isdigit() or len(micros) > 18:
            raise ValueError("Not a changes cursor.")
        when = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC")) + timedelta(microseconds=int(micros))
        return cls(updated_at=when, pk=int(pk))


@dataclass
class ChangesPage:
    sessions: list[ChatSession]
    matching_ids: set[int]
    cursor: ChangesCursor
    truncated: bool


def sessions_changed_since(
    *,
    since: ChangesCursor | None,
    filters: SessionFilters,
    limit: int = CHANGES_LIMIT,
    now: datetime | None = None,
) -> ChangesPage:
    """Sessions changed after `since` (oldest first), and which of them match `filters`.

    Without `since` it returns no rows, only a cursor to start polling from. Two queries: the
    changed rows, then which of them the client's current filters select, so the page can add,
    update or drop each row without reloading.
    """
    now = now or timezone.now()
    fresh = ChangesCursor(updated_at=now - CHANGES_OVERLAP)
    if since is None:
        return ChangesPage(sessions=[], matching_ids=set(), cursor=fresh, truncated=False)
    rows: list[ChatSession] = list(
        ChatSession.objects.filter(
            Q(updated_at__gt=since.updated_at) | Q(updated_at=since.updated_at, pk__gt=since.pk)
        )
        .select_related("site", "held_by")
        .annotate(
            error_count=error_count_subquery(unresolved_only=True),
            # When the visitor last wrote: the dashboard tells the agent holding the session
            # (static/dashboard/notify.js). A few rows per poll, each one index probe.
            visitor_wrote_at=Subquery(
                ChatMessage.objects.filter(session=OuterRef("pk"), role=MessageRole.VISITOR)
                .order_by("-created_at")
                .values("created_at")[:1]
            ),
        )
        .order_by("updated_at", "pk")[: limit + 1]
    )
    truncated = len(rows) > limit
    rows = rows[:limit]
    if truncated:
        cursor = ChangesCursor(updated_at=rows[-1].updated_at, pk=rows[-1].pk)
    else:
        # Never move backwards: a cursor from the future (client clock) stays where it is.
        cursor = max(since, fresh, key=lambda c: (c.updated_at, c.pk))
    matching: set[int] = set()
    if rows:
        matching = set(
            sessions_filter(filters)
            .filter(pk__in=[row.pk for row in rows])
            .order_by()
            .values_list("pk", flat=True)
        )
    return ChangesPage(sessions=rows, matching_ids=matching, cursor=cursor, truncated=truncated)


# --- Stats --------------------------------------------------------------------------------------

TOP_N = 10
COST_PLACES = Decimal("0.0001")


def sessions_stats(
    *, date_from: date, date_to: date, tz: ZoneInfo, site: int | None = None
) -> dict[str, Any]:
    """KPIs and chart series for sessions started between two dates (inclusive) in `tz`.

    Read from the rollups (sessions_app.rollups: figures per 15-minute bucket, kept by the
    database in the transaction of each session write), never from the session table: three
    queries over about one row per bucket and key, whatever the number of sessions.
    Sessions in the trash are left out; archived ones count (archiving changes nothing else).
    - sessions / converted: sessions started in the range, and those of them with a lead;
      conversion_rate = converted / sessions.
    - leads_per_day: leads by the day they were captured (a session started on Monday whose
      visitor leaves an email on Tuesday is Tuesday's lead).
    - avg_ai_latency_ms: mean `latency_ms` of the AI replies in those sessions, from the
      per-session counters `message_add` keeps (see `reply_latency_ms`).
    - channels: sessions and converted sessions per channel (web widget, Messenger, the channels
      n8n reports), busiest first, channels without sessions left out.
    - ai_tokens / ai_cost: tokens the backends reported for those sessions (the counter
      widget.budget keeps), and what they cost at each site's price per 1,000 tokens now;
      ai_tokens_per_lead / ai_cost_per_lead divide them by converted_sessions (the same
      sessions: a visitor who leaves no lead still costs), None without a lead.
    - opened / funnel: the widget's funnel for the range. `opened` counts the chat's openings
      by visitors without a conversation (WidgetOpening, per hour: opening creates no session);
      `engaged`, the web sessions started in range where the visitor wrote; `leads`, the web
      sessions started in range with a lead (a web lead is given in a visitor's message).
    Days are whole buckets in any time zone whose UTC offset is a multiple of 15 minutes.
    """
    start, end = day_bounds(date_from, date_to, tz)
    rows = SessionRollup.objects.filter(bucket__gte=bucket_of(start), bucket__lt=bucket_of(end))
    if site is not None:
        rows = rows.filter(site_id=site)
    days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    # The first bucket of each day: a bucket's day is the last boundary at or before it.
    boundaries = [bucket_of(datetime.combine(day, time.min, tzinfo=tz)) for day in days]
    per_day = dict.fromkeys(days, 0)
    leads_per_day = dict.fromkeys(days, 0)
    for bucket, n, leads in (
        rows.values("bucket")
        .annotate(n=Sum("sessions"), leads=Sum("leads"))
        .values_list("bucket", "n", "leads")
        .order_by()
    ):
        day = days[bisect_right(boundaries, bucket) - 1]
        per_day[day] += n
        leads_per_day[day] += leads

    aggregates = {
        # Named apart from the columns: F("tokens") below must mean the column, not the sum.
        **{f"sum_{name}": Sum(name, default=0) for name in ROLLUP_FIGURES},
        # Tokens x the site's price, summed exactly (numeric on PostgreSQL); /1000 below.
        "ai_cost_k": Sum(
            F("tokens") * F("site__ai_price_per_1k_tokens"),
            output_field=DecimalField(max_digits=30, decimal_places=6),
            default=Decimal(0),
        ),
    }
    # One pass for the totals, both breakdowns, the channels and the UTM list: rows per UTM
    # source and channel (short lists), every other figure a sum over them.
    groups: list[Mapping[str, Any]] = list(
        rows.values("utm_source", "channel").annotate(**aggregates).order_by()
    )
    totals = {key.removeprefix("sum_"): sum(row[key] for row in groups) for key in aggregates}
    by_source: dict[str, list[int]] = {}
    by_channel: dict[str, list[int]] = {}
    # The widget's funnel (after the openings): web sessions where the visitor wrote, and those
    # with a lead. Web only: openings are the widget's.
    web_engaged = web_leads = 0
    for row in groups:
        if row["channel"] == Channel.WEB:
            web_engaged += row["sum_engaged"]
            web_leads += row["sum_completion_complete"]
        for table, key in ((by_source, row["utm_source"]), (by_channel, row["channel"])):
            figures = table.setdefault(key, [0, 0])
            figures[0] += row["sum_sessions"]
            figures[1] += row["sum_completion_complete"]
    completion = {value: totals[f"completion_{value}"] for value in CompletionStatus.values}
    qa = {value: totals[f"qa_{value}"] for value in QAStatus.values}
    utm_sources = [
        {"utm_source": source, "sessions": n, "leads": leads}
        for source, (n, leads) in sorted(by_source.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if n > 0
    ][:TOP_N]
    channels = [
        {"channel": value, "sessions": n, "leads": leads}
        for value, (n, leads) in sorted(by_channel.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if n
    ]
    # The rollups key sessions by the page as the overview shows it (without the query string
    # and fragment), so "/pricing?utm_source=a" and "/pricing?utm_source=b" are one page.
    top_pages = [
        {"page_url": row["page"], "sessions": row["n"], "leads": row["leads"]}
        for row in rows.exclude(page="")
        .values("page")
        .annotate(n=Sum("sessions"), leads=Sum("completion_complete"))
        .filter(n__gt=0)
        .order_by("-n", "page")[:TOP_N]
    ]

    openings = WidgetOpening.objects.filter(hour__gte=start, hour__lt=end)
    if site is not None:
        openings = openings.filter(site_id=site)
    opened = openings.aggregate(n=Sum("count", default=0))["n"]

    n_sessions, converted = totals["sessions"], totals["completion_complete"]
    replies_timed = totals["replies_timed"]
    ai_tokens = int(totals["tokens"])
    ai_cost_exact = Decimal(totals["ai_cost_k"]) / 1000
    return {
        "date_from": date_from,
        "date_to": date_to,
        "time_zone": str(tz),
        "totals": {
            "opened": opened,
            "sessions": n_sessions,
            "leads": sum(leads_per_day.values()),
            "converted_sessions": converted,
            "conversion_rate": round(converted / n_sessions, 4) if n_sessions else 0.0,
            "ai_engaged_sessions": totals["engaged"],
            "needs_human": totals["needs_human"],
            "avg_messages": round(totals["messages"] / n_sessions, 2) if n_sessions else 0.0,
            "avg_ai_latency_ms": round(totals["latency_ms_total"] / replies_timed, 1)
            if replies_timed
            else None,
            "ai_replies_timed": replies_timed,
            "ai_tokens": ai_tokens,
            "ai_cost": _money(ai_cost_exact),
            "ai_tokens_per_lead": round(ai_tokens / converted, 1) if converted else None,
            "ai_cost_per_lead": _money(ai_cost_exact / converted) if converted else None,
        },
        "per_day": [
            {"date": day, "sessions": per_day[day], "leads": leads_per_day[day]} for day in days
        ],
        "completion": completion,
        "qa": qa,
        "top_pages": top_pages,
        "utm_sources": utm_sources,
        "channels": channels,
        "funnel": {"opened": opened, "engaged": web_engaged, "leads": web_leads},
    }


def _cut_at(expression: Any, char: str) -> Case:
    """`expression` up to (not including) the first `char`, or all of it without one."""
    position = StrIndex(expression, Value(char))
    return Case(
        When(GreaterThan(position, 0), then=Left(expression, position - 1)),
        default=expression,
        output_field=CharField(),
    )


def page_url_without_query() -> Case:
    """A session's page_url without its #fragment and ?query (SQL on SQLite and PostgreSQL)."""
    return _cut_at(_cut_at(F("page_url"), "#"), "?")


def _money(value: Decimal) -> Decimal:
    return value.quantize(COST_PLACES, rounding=ROUND_HALF_UP)


# --- Automation errors --------------------------------------------------------------------------


def automation_errors_filter(
    *, resolved: bool | None = None, source: str = "", session: Any = None
) -> QuerySet[AutomationError]:
    qs = AutomationError.objects.select_related("session", "resolved_by").order_by(
        "-created_at", "-id"
    )
    if resolved is not None:
        qs = qs.filter(resolved=resolved)
    if source:
        qs = qs.filter(source=source)
    if session is not None:
        qs = qs.filter(session__public_id=session)
    return qs


def automation_errors_unresolved_count() -> int:
    return AutomationError.objects.filter(resolved=False).count()


def session_rows(*, pks: list[int]) -> QuerySet[ChatSession]:
    """List rows (as the list shows them) for these sessions, in one query."""
    return (
        ChatSession.objects.filter(pk__in=pks)
        .select_related("site")
        .annotate(error_count=error_count_subquery(unresolved_only=True))
    )


def session_row(*, pk: int) -> ChatSession:
    return session_rows(pks=[pk]).get()


DELIVERIES_LIMIT = 50


def session_deliveries(session: ChatSession, limit: int = DELIVERIES_LIMIT) -> list[Delivery]:
    """The session's outbox rows (lead webhooks and QA emails), newest first, endpoint joined."""
    return list(
        session.deliveries.select_related("endpoint").order_by("-created_at", "-id")[:limit]
    )


def delivery_recipients(delivery: Delivery) -> str:
    """Where a delivery goes, for people: the endpoint's name, or an email's recipients."""
    if delivery.endpoint is not None:
        return delivery.endpoint.name
    to = delivery.payload.get("to") if isinstance(delivery.payload, dict) else None
    return ", ".join(str(t) for t in to) if isinstance(to, list) else ""


# The session page polls this every LIVE_POLL_MS while it is open (sessions_app.api.takeover).
LIVE_MESSAGES_LIMIT = 100


def session_messages_since(*, session: ChatSession, after: int) -> tuple[list[ChatMessage], int]:
    """The session's messages with an id above `after`, oldest first, at most
    LIVE_MESSAGES_LIMIT, and the cursor to ask from next: one query on the transcript index."""
    rows = list(
        ChatMessage.objects.filter(session_id=session.pk, id__gt=after)
        .select_related("sent_by")
        .order_by("id")[:LIVE_MESSAGES_LIMIT]
    )
    return rows, (rows[-1].pk if rows else after)
