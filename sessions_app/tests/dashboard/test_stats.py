"""Stats on a hand-built data set: per-day counts across a time-zone boundary, conversion rate,
breakdowns, top lists, averages; bounded queries."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from sessions_app.models import Channel, ChatSession, CompletionStatus, MessageRole, QAStatus
from sessions_app.selectors import sessions_stats
from sessions_app.services import message_add, widget_opening_count
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

UTC = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")
STATS = reverse("staff-api:stats")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def reply(session, metadata):
    message_add(session=session, role=MessageRole.AI, text="Reply", metadata=metadata)


@pytest.fixture
def dataset(db):
    """Five sessions in 9-11 March 2026 (UTC), one in the trash, one outside the range.

    New York is on daylight time (UTC-4) from 8 March 2026, so 03:30 UTC on the 10th is
    23:30 on the 9th there.
    """
    page_a, page_b = "https://x.example.com/a", "https://x.example.com/b"
    s1 = ChatSessionFactory(
        started_at=at(9, 14),
        page_url=page_a,
        utm_source="google",
        completion_status=CompletionStatus.COMPLETE,
        lead_captured_at=at(9, 14, 5),
        message_count=4,  # + 2 replies below
        qa_status=QAStatus.PASSED,
        ai_engaged=True,
    )
    s2 = ChatSessionFactory(
        started_at=at(10, 3, 30),  # the 10th in UTC, the 9th in New York
        page_url=page_a,
        utm_source="google",
        completion_status=CompletionStatus.COMPLETE,
        lead_captured_at=at(10, 3, 40),
        message_count=2,  # + 2 replies below
        qa_status=QAStatus.ISSUE,
        ai_engaged=True,
    )
    s3 = ChatSessionFactory(
        started_at=at(10, 15),
        page_url=page_b,
        utm_source="",
        completion_status=CompletionStatus.INCOMPLETE,
        message_count=2,
    )
    s4 = ChatSessionFactory(started_at=at(11, 12), page_url=page_b, message_count=0)
    trash = ChatSessionFactory(started_at=at(10, 12), message_count=50)
    outside = ChatSessionFactory(started_at=at(20, 12), message_count=50)
    # Replies go through message_add, which keeps the session's latency counters.
    for session, latency in [(s1, 1000), (s1, 2000), (s2, "3000"), (s2, "slow")]:
        reply(session, {"latency_ms": latency})
    reply(trash, {"latency_ms": 9999})
    reply(outside, {"latency_ms": 9999})
    ChatSession.objects.filter(pk=trash.pk).update(deleted_at=at(10, 13))
    return {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "page_a": page_a, "page_b": page_b}


@pytest.mark.django_db
def test_per_day_counts_follow_the_time_zone(dataset):
    utc = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC)
    ny = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=NY)
    by_day = lambda stats: [(d["date"].day, d["sessions"], d["leads"]) for d in stats["per_day"]]  # noqa: E731
    assert by_day(utc) == [(9, 1, 1), (10, 2, 1), (11, 1, 0)]
    assert by_day(ny) == [(9, 2, 2), (10, 1, 0), (11, 1, 0)]


@pytest.mark.django_db
def test_days_without_sessions_are_zero_not_missing(dataset):
    stats = sessions_stats(date_from=date(2026, 3, 8), date_to=date(2026, 3, 12), tz=UTC)
    assert [d["date"].day for d in stats["per_day"]] == [8, 9, 10, 11, 12]
    assert stats["per_day"][0]["sessions"] == 0 and stats["per_day"][-1]["sessions"] == 0


@pytest.mark.django_db
def test_totals_conversion_and_averages(dataset):
    stats = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC)
    totals = stats["totals"]
    assert totals["sessions"] == 4  # trash and out-of-range left out
    assert totals["leads"] == 2
    assert totals["converted_sessions"] == 2
    assert totals["conversion_rate"] == 0.5
    assert totals["avg_messages"] == 3.0  # (6 + 4 + 2 + 0) / 4
    assert totals["ai_engaged_sessions"] == 2
    # Numbers only (the numeric string counts, "slow" doesn't); trash and out-of-range left out.
    assert totals["avg_ai_latency_ms"] == 2000.0
    assert totals["ai_replies_timed"] == 3


@pytest.mark.django_db
def test_breakdowns_and_top_lists(dataset):
    stats = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC)
    assert stats["completion"] == {"in_progress": 1, "complete": 2, "incomplete": 1}
    assert stats["qa"] == {"unchecked": 2, "passed": 1, "issue": 1, "fixed": 0}
    assert stats["top_pages"] == [
        {"page_url": dataset["page_a"], "sessions": 2, "leads": 2},
        {"page_url": dataset["page_b"], "sessions": 2, "leads": 0},
    ]
    assert stats["utm_sources"] == [
        {"utm_source": "", "sessions": 2, "leads": 0},
        {"utm_source": "google", "sessions": 2, "leads": 2},
    ]


@pytest.mark.django_db
def test_sessions_and_leads_per_channel_busiest_first(dataset):
    in_range = ChatSession.objects.filter(
        started_at__gte=at(9, 0), started_at__lt=at(12, 0), deleted_at__isnull=True
    ).order_by("started_at")
    lead, no_lead = (
        in_range.filter(completion_status=CompletionStatus.COMPLETE).first(),
        (in_range.exclude(completion_status=CompletionStatus.COMPLETE).first()),
    )
    ChatSession.objects.filter(pk=lead.pk).update(channel="messenger")
    ChatSession.objects.filter(pk=no_lead.pk).update(channel="whatsapp")
    stats = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC)
    # The trash and the sessions out of the range count nowhere; channels without any are left out.
    assert stats["channels"] == [
        {"channel": "web", "sessions": 2, "leads": 1},
        {"channel": "messenger", "sessions": 1, "leads": 1},
        {"channel": "whatsapp", "sessions": 1, "leads": 0},
    ]


@pytest.mark.django_db
def test_empty_range_gives_zeros_not_errors(db):
    stats = sessions_stats(date_from=date(2026, 1, 1), date_to=date(2026, 1, 2), tz=UTC)
    assert stats["totals"]["sessions"] == 0
    assert stats["totals"]["conversion_rate"] == 0.0
    assert stats["totals"]["avg_ai_latency_ms"] is None
    assert stats["channels"] == []


@pytest.mark.django_db
def test_stats_api_uses_the_requested_zone_and_site(api, agent_user, dataset):
    client = api(agent_user)
    query = {"date_from": "2026-03-09", "date_to": "2026-03-11", "tz": "America/New_York"}
    body = client.get(STATS, query).json()
    assert body["time_zone"] == "America/New_York"
    assert body["per_day"][0] == {"date": "2026-03-09", "sessions": 2, "leads": 2}
    site = dataset["s1"].site
    only_site = client.get(STATS, {**query, "site": site.pk}).json()
    assert only_site["totals"]["sessions"] == 1


@pytest.mark.django_db
def test_stats_api_zone_falls_back_to_the_browser_cookie(api, agent_user, dataset):
    client = api(agent_user)
    client.cookies["tz"] = "America/New_York"
    body = client.get(STATS, {"date_from": "2026-03-09", "date_to": "2026-03-09"}).json()
    assert body["time_zone"] == "America/New_York" and body["totals"]["sessions"] == 2
    client.cookies["tz"] = "Not/AZone"  # a broken cookie is ignored, not an error
    assert client.get(STATS).status_code == 200


@pytest.mark.django_db
def test_stats_api_defaults_to_the_last_30_days(api, agent_user):
    body = api(agent_user).get(STATS).json()
    assert len(body["per_day"]) == 30


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2026-03-10", "date_to": "2026-03-01"},
        {"date_from": "2020-01-01", "date_to": "2026-01-01"},
        {"date_from": "yesterday"},
        {"tz": "Nowhere/Land"},
        {"site": "-4"},
    ],
)
def test_stats_api_bad_parameters_are_400(api, agent_user, query):
    response = api(agent_user).get(STATS, query)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.django_db
def test_stats_query_count_is_independent_of_data_size(
    api, agent_user, dataset, django_assert_max_num_queries
):
    client = api(agent_user)
    query = {"date_from": "2026-03-01", "date_to": "2026-03-31"}
    client.get(STATS, query)
    with django_assert_max_num_queries(20) as small:
        client.get(STATS, query)
    for day in range(1, 29):
        session = ChatSessionFactory(started_at=at(day, 10), page_url=f"https://p{day}.example/")
        reply(session, {"latency_ms": day})
    with django_assert_max_num_queries(20) as large:
        client.get(STATS, query)
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.fixture
def priced_sessions(db):
    """Two sites with their own price per 1,000 tokens; three sessions in range, two leads."""
    cheap = SiteFactory(ai_price_per_1k_tokens=Decimal("0.5"))
    dear = SiteFactory(ai_price_per_1k_tokens=Decimal("2.25"))
    lead = {"completion_status": CompletionStatus.COMPLETE, "lead_captured_at": at(9, 15)}
    ChatSessionFactory(site=cheap, started_at=at(9, 14), ai_tokens=3000, **lead)
    ChatSessionFactory(site=cheap, started_at=at(9, 16), ai_tokens=1001)  # spent, no lead
    ChatSessionFactory(site=dear, started_at=at(10, 9), ai_tokens=2000, **lead)
    ChatSessionFactory(site=dear, started_at=at(20, 9), ai_tokens=99_000, **lead)  # outside
    return cheap, dear


@pytest.mark.django_db
def test_ai_tokens_and_cost_per_lead_use_each_sites_price(priced_sessions):
    cheap, _ = priced_sessions
    stats = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC)
    totals = stats["totals"]
    # 4001 x 0.5 / 1000 + 2000 x 2.25 / 1000 = 2.0005 + 4.5 over 2 leads.
    assert totals["ai_tokens"] == 6001
    assert totals["ai_cost"] == Decimal("6.5005")
    assert totals["ai_tokens_per_lead"] == 3000.5
    assert totals["ai_cost_per_lead"] == Decimal("3.2503")

    one_site = sessions_stats(
        date_from=date(2026, 3, 9), date_to=date(2026, 3, 11), tz=UTC, site=cheap.pk
    )["totals"]
    assert (one_site["ai_tokens"], one_site["ai_cost"]) == (4001, Decimal("2.0005"))
    assert one_site["ai_cost_per_lead"] == Decimal("2.0005")


@pytest.mark.django_db
def test_cost_per_lead_is_null_without_a_lead(db):
    ChatSessionFactory(started_at=at(9, 14), ai_tokens=500)
    totals = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 9), tz=UTC)["totals"]
    assert totals["ai_tokens"] == 500
    assert totals["ai_cost"] == Decimal("0")  # the factory's site has no price set
    assert totals["ai_cost_per_lead"] is None and totals["ai_tokens_per_lead"] is None


@pytest.mark.django_db
def test_stats_api_reports_ai_tokens_and_cost_per_lead(api, agent_user, priced_sessions):
    body = api(agent_user).get(STATS, {"date_from": "2026-03-09", "date_to": "2026-03-11"}).json()
    totals = body["totals"]
    assert totals["ai_tokens"] == 6001
    assert totals["ai_cost"] == "6.5005"
    assert totals["ai_cost_per_lead"] == "3.2503"
    assert totals["ai_tokens_per_lead"] == 3000.5


@pytest.mark.django_db
def test_top_landing_pages_group_by_the_page_as_shown_without_the_query():
    """Issue 16: one row per page as the overview shows it (host and path), not one per query
    string; on SQLite and PostgreSQL alike (CI runs this file on both)."""
    site = SiteFactory()
    pages = [
        ("https://acme.example.com/pricing?utm_source=google", CompletionStatus.COMPLETE),
        ("https://acme.example.com/pricing?utm_source=bing&x=1", CompletionStatus.IN_PROGRESS),
        ("https://acme.example.com/pricing#plans", CompletionStatus.COMPLETE),
        ("https://acme.example.com/pricing", CompletionStatus.IN_PROGRESS),
        ("https://acme.example.com/blog?p=2#top", CompletionStatus.IN_PROGRESS),
        ("https://acme.example.com/blog", CompletionStatus.COMPLETE),
        ("https://acme.example.com/pricing/enterprise", CompletionStatus.IN_PROGRESS),
    ]
    for page_url, completion in pages:
        ChatSessionFactory(
            site=site, started_at=at(10, 12), page_url=page_url, completion_status=completion
        )
    stats = sessions_stats(date_from=date(2026, 3, 10), date_to=date(2026, 3, 10), tz=UTC)
    assert stats["top_pages"] == [
        {"page_url": "https://acme.example.com/pricing", "sessions": 4, "leads": 2},
        {"page_url": "https://acme.example.com/blog", "sessions": 2, "leads": 1},
        {"page_url": "https://acme.example.com/pricing/enterprise", "sessions": 1, "leads": 0},
    ]


# --- The widget's funnel: opened -> engaged -> lead -----------------------------------------


@pytest.fixture
def funnel_dataset(db):
    """Two sites, 9-10 March 2026 (UTC). Openings are counted per hour; sessions exist only
    where the visitor wrote (and, from before this rule, one empty one)."""
    acme, other = SiteFactory(), SiteFactory()
    for site, moment, times in [
        (acme, at(9, 14, 10), 3),
        (acme, at(10, 3, 15), 2),  # the 10th in UTC, the 9th in New York
        (acme, at(10, 15), 4),
        (acme, at(12, 9), 7),  # outside the range
        (other, at(9, 16), 5),
    ]:
        for _ in range(times):
            widget_opening_count(site_id=site.pk, now=moment)
    web = {"channel": Channel.WEB, "ai_engaged": True}
    lead = {"completion_status": CompletionStatus.COMPLETE, "lead_captured_at": at(9, 15)}
    ChatSessionFactory(site=acme, started_at=at(9, 14, 20), **web, **lead)
    ChatSessionFactory(site=acme, started_at=at(9, 14, 30), **web)
    ChatSessionFactory(site=acme, started_at=at(10, 3, 20), **web, **lead)
    ChatSessionFactory(site=acme, started_at=at(10, 15, 5), **web)
    # An empty session from before the rule (the visitor never wrote): not engaged.
    ChatSessionFactory(site=acme, started_at=at(10, 15, 6), channel=Channel.WEB)
    # Messenger conversations have no openings: not in the widget's funnel.
    messenger = {"channel": Channel.MESSENGER, "ai_engaged": True}
    ChatSessionFactory(site=acme, started_at=at(9, 17), **messenger, **lead)
    ChatSessionFactory(site=other, started_at=at(9, 16, 5), **web, **lead)
    return acme, other


@pytest.mark.django_db
def test_funnel_counts_openings_engaged_sessions_and_leads(funnel_dataset):
    acme, _ = funnel_dataset
    days = {"date_from": date(2026, 3, 9), "date_to": date(2026, 3, 10)}

    everything = sessions_stats(**days, tz=UTC)
    only_acme = sessions_stats(**days, tz=UTC, site=acme.pk)
    acme_9th_utc = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 9), tz=UTC)
    acme_9th_ny = sessions_stats(
        date_from=date(2026, 3, 9), date_to=date(2026, 3, 9), tz=NY, site=acme.pk
    )

    assert everything["funnel"] == {"opened": 14, "engaged": 5, "leads": 3}
    assert everything["totals"]["opened"] == 14
    assert only_acme["funnel"] == {"opened": 9, "engaged": 4, "leads": 2}
    assert acme_9th_utc["funnel"] == {"opened": 8, "engaged": 3, "leads": 2}
    # In New York the 03:15 UTC openings and session of the 10th fall on the 9th.
    assert acme_9th_ny["funnel"] == {"opened": 5, "engaged": 3, "leads": 2}


@pytest.mark.django_db
def test_stats_api_includes_the_funnel_for_the_site_filter(api, agent_user, funnel_dataset):
    _, other = funnel_dataset
    query = {"date_from": "2026-03-09", "date_to": "2026-03-10", "tz": "UTC"}

    body = api(agent_user).get(STATS, {**query, "site": other.pk}).json()

    assert body["totals"]["opened"] == 5
    assert body["funnel"] == {"opened": 5, "engaged": 1, "leads": 1}
