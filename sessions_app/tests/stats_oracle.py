"""The stats as they were computed before the rollups: straight from the session table.

Kept as the tests' oracle (sessions_app/tests/dashboard/test_rollups.py): the rollups must give
the same answer for any data. Copied from sessions_app/selectors.py as of the commit before the
rollups; not used by the product.
"""

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, F, Q, Sum
from django.db.models.functions import TruncDate

from sessions_app.models import Channel, ChatSession, CompletionStatus, QAStatus, WidgetOpening
from sessions_app.selectors import TOP_N, _money, day_bounds, page_url_without_query


def raw_stats(
    *, date_from: date, date_to: date, tz: ZoneInfo, site: int | None = None
) -> dict[str, Any]:
    """KPIs and chart series for sessions started between two dates (inclusive) in `tz`.

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
      widget.budget keeps), and what they cost at each session's site price per 1,000 tokens;
      ai_tokens_per_lead / ai_cost_per_lead divide them by converted_sessions (the same
      sessions: a visitor who leaves no lead still costs), None without a lead.
    A fixed number of queries whatever the data size.
    """
    start, end = day_bounds(date_from, date_to, tz)
    sessions = ChatSession.objects.not_deleted()
    if site is not None:
        sessions = sessions.filter(site_id=site)
    started = sessions.filter(started_at__gte=start, started_at__lt=end).order_by()
    complete = Q(completion_status=CompletionStatus.COMPLETE)

    # Each pass over the range is a scan of the session table at scale, so there are three:
    # the per-day series, the totals (with breakdowns and UTM sources) and the top pages.
    # Folding the per-day series into the totals was slower: grouping by day sorted every
    # session instead of hashing a few groups (bench/results.md).
    per_day = {
        row["day"]: row["n"]
        # COUNT(*) and no ORDER BY (the days are looked up, not listed) let PostgreSQL hash
        # the groups straight off the index instead of sorting every session.
        for row in started.annotate(day=TruncDate("started_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("*"))
        .order_by()
    }
    # The totals, both breakdowns and the UTM list come from one pass, grouped by UTM source
    # (a short list in practice): every other figure is a sum over those rows.
    aggregates = {
        "sessions": Count("*"),
        "converted": Count("id", filter=complete),
        "engaged": Count("id", filter=Q(ai_engaged=True)),
        # The widget's funnel (issue 16), as the raw tables give it.
        "web_engaged": Count("id", filter=Q(channel=Channel.WEB, ai_engaged=True)),
        "web_leads": Count("id", filter=complete & Q(channel=Channel.WEB)),
        # Waiting for a person now (of the sessions in range; the overview's live card).
        "needs_human": Count("id", filter=Q(needs_human=True)),
        "messages": Sum("message_count", default=0),
        # Per-session counters kept by message_add (the messages themselves are not read).
        "latency_total": Sum("ai_latency_ms_total", default=0),
        "replies_timed": Sum("ai_replies_timed", default=0),
        "tokens": Sum("ai_tokens", default=0),
        # Tokens x the site's price, summed exactly (numeric on PostgreSQL); /1000 below.
        "ai_cost_k": Sum(
            F("ai_tokens") * F("site__ai_price_per_1k_tokens"),
            output_field=DecimalField(max_digits=30, decimal_places=6),
            default=Decimal(0),
        ),
        **{
            f"completion_{value}": Count("id", filter=Q(completion_status=value))
            for value in CompletionStatus.values
        },
        **{f"qa_{value}": Count("id", filter=Q(qa_status=value)) for value in QAStatus.values},
        **{f"channel_{value}": Count("id", filter=Q(channel=value)) for value in Channel.values},
        **{
            f"channel_leads_{value}": Count("id", filter=complete & Q(channel=value))
            for value in Channel.values
        },
    }
    # Rows of the aggregates above (their names come from a dict, which the plugin cannot see).
    by_source: list[Mapping[str, Any]] = list(
        started.values("utm_source").annotate(**aggregates).order_by()
    )
    totals = {key: sum(row[key] for row in by_source) for key in aggregates}
    completion = {value: totals[f"completion_{value}"] for value in CompletionStatus.values}
    qa = {value: totals[f"qa_{value}"] for value in QAStatus.values}
    utm_sources = [
        {"utm_source": row["utm_source"], "sessions": row["sessions"], "leads": row["converted"]}
        for row in sorted(by_source, key=lambda row: (-row["sessions"], row["utm_source"]))[:TOP_N]
    ]
    channels = sorted(
        (
            {
                "channel": value,
                "sessions": totals[f"channel_{value}"],
                "leads": totals[f"channel_leads_{value}"],
            }
            for value in Channel.values
            if totals[f"channel_{value}"]
        ),
        key=lambda row: (-row["sessions"], row["channel"]),
    )
    leads_per_day = {
        row["day"]: row["n"]
        for row in sessions.filter(lead_captured_at__gte=start, lead_captured_at__lt=end)
        .annotate(day=TruncDate("lead_captured_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("*"))
        .order_by()
    }
    # Grouped by the page as the overview shows it: without the query string (and fragment),
    # so "/pricing?utm_source=a" and "/pricing?utm_source=b" are one page, not two rows that
    # look the same.
    top_pages = [
        {"page_url": row["page"], "sessions": row["n"], "leads": row["leads"]}
        for row in started.exclude(page_url="")
        .annotate(page=page_url_without_query())
        .values("page")
        .annotate(n=Count("id"), leads=Count("id", filter=complete))
        .order_by("-n", "page")[:TOP_N]
    ]

    openings = WidgetOpening.objects.filter(hour__gte=start, hour__lt=end)
    if site is not None:
        openings = openings.filter(site_id=site)
    opened = openings.aggregate(n=Sum("count", default=0))["n"]
    days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
    n_sessions, converted = totals["sessions"], totals["converted"]
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
            "avg_ai_latency_ms": round(totals["latency_total"] / replies_timed, 1)
            if replies_timed
            else None,
            "ai_replies_timed": replies_timed,
            "ai_tokens": ai_tokens,
            "ai_cost": _money(ai_cost_exact),
            "ai_tokens_per_lead": round(ai_tokens / converted, 1) if converted else None,
            "ai_cost_per_lead": _money(ai_cost_exact / converted) if converted else None,
        },
        "per_day": [
            {"date": day, "sessions": per_day.get(day, 0), "leads": leads_per_day.get(day, 0)}
            for day in days
        ],
        "completion": completion,
        "qa": qa,
        "top_pages": top_pages,
        "utm_sources": utm_sources,
        "channels": channels,
        "funnel": {
            "opened": opened,
            "engaged": totals["web_engaged"],
            "leads": totals["web_leads"],
        },
    }
