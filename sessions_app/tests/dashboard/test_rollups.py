"""The stats rollups: kept exact by every kind of write, equal to a rebuild from the raw rows, the
only thing the stats answer reads, and compacted by the worker without changing a figure."""

import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from qa.services import qa_mark_issue, qa_mark_passed
from sessions_app import rollups
from sessions_app.delivery.registry import worker_jobs
from sessions_app.errors import DomainError
from sessions_app.models import Channel, ChatSession, MessageRole, SessionRollup
from sessions_app.selectors import sessions_stats
from sessions_app.services import (
    human_request,
    human_request_clear,
    lead_capture,
    lead_erase,
    message_add,
    session_archive,
    session_delete,
    session_restore,
    session_start,
    session_unarchive,
    sessions_purge,
)
from sessions_app.tests.factories import ChatSessionFactory
from sessions_app.tests.stats_oracle import raw_stats
from widget.tests.factories import SiteFactory

STATS = reverse("staff-api:stats")
PAGES = [
    "https://landing.example.com/offer",
    "https://landing.example.com/offer?utm_source=ads",
    "https://landing.example.com/pricing#plans",
    "https://landing.example.com/pricing",
    "",
]
SOURCES = ["", "google", "newsletter", "facebook"]
ZONES = [UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Kathmandu")]


def rebuilt_by_key() -> dict:
    """What a fresh rebuild from the raw rows says (the live rows are restored afterwards)."""
    with transaction.atomic():
        rollups.rollups_rebuild()
        rebuilt = rollups.rollups_by_key(SessionRollup.objects.all())
        transaction.set_rollback(True)
    return rebuilt


def assert_stats_match_the_raw_tables(sites, days: tuple[date, date]) -> None:
    for tz in ZONES:
        for site in (None, *(s.pk for s in sites)):
            kwargs = {"date_from": days[0], "date_to": days[1], "tz": tz, "site": site}
            assert sessions_stats(**kwargs) == raw_stats(**kwargs), (tz, site)


class RandomWrites:
    """A seeded random mix of the product's writes on a few sites, days, pages and sources."""

    def __init__(self, seed: int, sites, reviewer) -> None:
        self.rng = random.Random(seed)
        self.sites = sites
        self.reviewer = reviewer
        self.now = timezone.now()
        self.emails: list[str] = []

    def pick(self) -> ChatSession | None:
        ids = list(ChatSession.objects.values_list("pk", flat=True))
        return ChatSession.objects.get(pk=self.rng.choice(ids)) if ids else None

    def start(self) -> None:
        rng = self.rng
        session_start(
            site=rng.choice([*self.sites, None]),
            channel=rng.choice([Channel.WEB, Channel.WEB, Channel.MESSENGER, Channel.WHATSAPP]),
            started_at=self.now - timedelta(minutes=rng.randint(0, 12 * 24 * 60)),
            page_url=rng.choice(PAGES),
            utm={"source": rng.choice(SOURCES)},
        )

    def step(self) -> str:
        rng = self.rng
        kind = rng.choices(
            [
                "start",
                "message",
                "reply",
                "lead",
                "archive",
                "unarchive",
                "trash",
                "restore",
                "qa",
                "human",
                "tokens",
                "rekey",
                "erase",
                "purge",
                "hard_delete",
                "compact",
            ],
            weights=[20, 12, 12, 8, 4, 3, 4, 3, 5, 4, 4, 4, 2, 1, 2, 3],
        )[0]
        if kind == "start":
            self.start()
            return kind
        if kind == "compact":
            rollups.rollups_compact(limit=rng.randint(1, 40))
            return kind
        if kind == "purge":
            sessions_purge(older_than=timedelta(days=11), batch_size=3)
            return kind
        if kind == "erase":
            if self.emails:
                lead_erase(email=self.emails.pop(rng.randrange(len(self.emails))))
            return kind
        session = self.pick()
        if session is None:
            return kind
        try:
            if kind == "message":
                message_add(session=session, role=MessageRole.VISITOR, text="Hello there")
            elif kind == "reply":
                message_add(
                    session=session,
                    role=MessageRole.AI,
                    text="An answer",
                    metadata={"latency_ms": rng.choice([120, 333.3, "870", "slow", 1500.25])},
                )
            elif kind == "lead":
                email = f"person{rng.randint(1, 30)}@example.com"
                lead_capture(session=session, name="Pat Doe", email=email)
                self.emails.append(email)
            elif kind == "archive":
                session_archive(session=session, by=self.reviewer)
            elif kind == "unarchive":
                session_unarchive(session=session, by=self.reviewer)
            elif kind == "trash":
                session_delete(session=session, by=self.reviewer)
            elif kind == "restore":
                session_restore(session=session, by=self.reviewer)
            elif kind == "qa":
                if rng.random() < 0.5:
                    qa_mark_passed(session=session, by=self.reviewer)
                else:
                    qa_mark_issue(session=session, by=self.reviewer, note="Wrong price quoted")
            elif kind == "human":
                if session.needs_human:
                    human_request_clear(session=session, by=self.reviewer)
                else:
                    human_request(session=session)
            elif kind == "tokens":
                # As widget.budget counts a backend's tokens.
                ChatSession.objects.filter(pk=session.pk).update(
                    ai_tokens=F("ai_tokens") + rng.randint(1, 900)
                )
            elif kind == "rekey":
                # Attributes the rollup key is made of change: the old key loses the session,
                # the new one gains it (an ingest widening the start, a corrected source).
                ChatSession.objects.filter(pk=session.pk).update(
                    started_at=session.started_at - timedelta(minutes=rng.randint(1, 600)),
                    utm_source=rng.choice(SOURCES),
                    page_url=rng.choice(PAGES),
                    channel=rng.choice([Channel.WEB, Channel.API]),
                )
            elif kind == "hard_delete":
                session.delete()
        except DomainError:
            pass  # a move the session's state refuses (archiving one in the trash...)
        return kind


@pytest.fixture
def sites(db):
    return [
        SiteFactory(ai_price_per_1k_tokens=Decimal("0.5")),
        SiteFactory(ai_price_per_1k_tokens=Decimal("2.25")),
    ]


@pytest.mark.django_db
def test_rebuild_equals_live_rollups_and_stats_equal_raw_tables_after_random_writes(
    sites, make_user
):
    writes = RandomWrites(seed=17, sites=sites, reviewer=make_user("admin"))
    for _ in range(40):
        writes.start()
    kinds = [writes.step() for _ in range(700)]
    assert {"erase", "purge", "hard_delete", "trash", "rekey", "lead", "compact"} <= set(kinds)
    assert ChatSession.objects.exists()
    days = ((writes.now - timedelta(days=13)).date(), writes.now.date())

    # Live rollups, part deltas part compacted, then all compacted by the worker's job.
    assert rollups.deltas_pending() > 0
    live = rollups.rollups_by_key()
    assert live == rebuilt_by_key()
    assert_stats_match_the_raw_tables(sites, days)
    job = next(job for job in worker_jobs() if job.name == rollups.JOB_NAME)
    while job.run("worker-1", 10):
        pass
    assert rollups.deltas_pending() == 0
    assert rollups.rollups_by_key() == live
    assert_stats_match_the_raw_tables(sites, days)
    # The compaction leaves about one row per key (the deltas of a key fold into one).
    assert SessionRollup.objects.count() <= len(live) + 5


@pytest.mark.django_db
def test_a_key_change_moves_the_session_between_buckets(sites):
    session = ChatSessionFactory(site=sites[0], started_at=datetime(2026, 3, 9, 23, 50, tzinfo=UTC))
    day9 = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 9), tz=UTC)
    assert day9["totals"]["sessions"] == 1
    ChatSession.objects.filter(pk=session.pk).update(
        started_at=datetime(2026, 3, 10, 0, 5, tzinfo=UTC), utm_source="google"
    )
    both = sessions_stats(date_from=date(2026, 3, 9), date_to=date(2026, 3, 10), tz=UTC)
    assert [d["sessions"] for d in both["per_day"]] == [0, 1]
    assert both["utm_sources"] == [{"utm_source": "google", "sessions": 1, "leads": 0}]


@pytest.mark.django_db
def test_stats_answer_reads_only_the_rollups_with_flat_query_counts(api, agent_user, sites):
    client = api(agent_user)
    today = timezone.now().date()
    query = {"date_from": str(today - timedelta(days=29)), "date_to": str(today), "tz": "UTC"}

    def stats_queries() -> list[str]:
        client.get(STATS, query)  # warm: the user, the session
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(STATS, query)
        assert response.status_code == 200
        return [q["sql"] for q in ctx.captured_queries]

    def add(n: int) -> None:
        rng = random.Random(n)
        now = timezone.now()
        ChatSession.objects.bulk_create(
            ChatSession(
                site=rng.choice(sites),
                channel=rng.choice(Channel.values),
                started_at=now - timedelta(minutes=rng.randint(0, 28 * 24 * 60)),
                page_url=rng.choice(PAGES),
                utm_source=rng.choice(SOURCES),
                message_count=rng.randint(0, 9),
                ai_tokens=rng.randint(0, 500),
            )
            for _ in range(n)
        )

    add(10)
    small = stats_queries()
    add(9_990)
    rollups.rollups_compact_all()
    large = stats_queries()
    assert len(small) == len(large)
    for sql in large:
        assert "chatsession" not in sql and "chatmessage" not in sql, sql
    assert sum("sessionrollup" in sql for sql in large) == 3
    assert client.get(STATS, query).json()["totals"]["sessions"] == 10_000
    stats_range = (today - timedelta(days=29), today)
    assert sessions_stats(date_from=stats_range[0], date_to=stats_range[1], tz=UTC) == raw_stats(
        date_from=stats_range[0], date_to=stats_range[1], tz=UTC
    )


@pytest.mark.django_db
def test_rebuild_command_repairs_only_the_range_and_site_asked(sites):
    old = datetime(2026, 3, 1, 10, tzinfo=UTC)
    new = datetime(2026, 3, 20, 10, tzinfo=UTC)
    for site in sites:
        for started in (old, new):
            ChatSessionFactory(site=site, started_at=started, message_count=3)
    good = rollups.rollups_by_key()
    # Damage every row, as a bug or a hand edit would.
    SessionRollup.objects.update(sessions=F("sessions") + 5)

    call_command("rebuild_rollups", "--since", "2026-03-10", "--site", str(sites[0].pk))
    now = rollups.rollups_by_key()
    for key, figures in now.items():
        repaired = key[1] == sites[0].pk and rollups.bucket_start(key[0]) >= new
        assert (figures == good[key]) == repaired, key

    call_command("rebuild_rollups")
    assert rollups.rollups_by_key() == good


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "10/03/2026"], "--since must be a day as YYYY-MM-DD, not '10/03/2026'."),
        (["--site", "999999"], "There is no site 999999."),
        (["--site", "x"], "argument --site: invalid int value: 'x'"),
    ],
)
def test_rebuild_command_refuses_bad_input_in_one_line(args, message):
    with pytest.raises(CommandError) as excinfo:
        call_command("rebuild_rollups", *args)
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


@pytest.mark.django_db
def test_updates_that_move_no_figure_write_no_rollup_row(sites):
    session = ChatSessionFactory(site=sites[0])
    before = SessionRollup.objects.count()
    ChatSession.objects.filter(pk=session.pk).update(
        last_activity_at=timezone.now(), updated_at=timezone.now(), qa_notes="seen"
    )
    assert SessionRollup.objects.count() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_writers_of_one_bucket_do_not_wait_on_each_other(sites):
    """Two open transactions start sessions in the same key: the second commits while the
    first is still open (the trigger only inserts; nothing locks a shared rollup row)."""
    started = timezone.now()
    first_in = threading.Event()
    release = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                ChatSessionFactory(site=sites[0], started_at=started, utm_source="g")
                first_in.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_in.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            ChatSessionFactory(site=sites[0], started_at=started, utm_source="g")
            ChatSession.objects.filter(site=sites[0]).update(message_count=4)
    finally:
        release.set()
        thread.join()
    day = started.date()
    stats = sessions_stats(date_from=day, date_to=day, tz=UTC, site=sites[0].pk)
    assert stats["totals"]["sessions"] == 2
