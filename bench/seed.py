"""Seed the scale data set with PostgreSQL COPY (psycopg 3): fast enough for 1,000,000 rows.

The data set is described by `SEED_TABLES`, one `TableSeed` per table, in dependency order. A
table that lands later (the webhook deliveries of the outbox) is one more entry: its model label,
the columns it fills and a generator of rows built from the shared `SeedPlan`.

Columns a seed does not list are filled from the model: nullable ones are left NULL, NOT NULL ones
get the field's default. So a field merged later into ChatSession does not break the seeder; it
just gets its default value on every row.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db import connection
from django.db.models import Field
from django.utils import timezone

from sessions_app.leads import lead_key
from sessions_app.rollups import SESSION_TABLE as ROLLUP_SESSION_TABLE
from sessions_app.rollups import rollups_rebuild

# The one session the admin change view is measured on ("a session with 500 messages").
BIG_SESSION_MESSAGES = 500
MESSAGE_GAP = timedelta(seconds=17)

LANDING_PAGES = [f"https://www.example.com/lp/{slug}" for slug in (
    "pricing", "demo", "free-trial", "enterprise", "webinar", "ebook", "agency", "startups",
    "ecommerce", "healthcare", "education", "real-estate", "saas", "contact", "features",
    "integrations", "security", "compare", "black-friday", "partners",
)]  # fmt: skip
REFERRERS = ["", "", "https://www.google.com/", "https://www.facebook.com/", "https://t.co/x"]
UTM_SOURCES = ["", "", "google", "facebook", "linkedin", "newsletter", "bing"]
UTM_MEDIUMS = {"": "", "google": "cpc", "facebook": "paid_social", "linkedin": "paid_social",
               "newsletter": "email", "bing": "cpc"}  # fmt: skip
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Inés", "Jonas",
               "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven",
               "Tara"]  # fmt: skip
LAST_NAMES = ["Silva", "Müller", "Kowalski", "Okafor", "Tanaka", "Dubois", "Rossi", "Novak",
              "Haddad", "Jensen", "García", "Smith"]  # fmt: skip
VISITOR_TEXTS = [
    "Hi, I'd like to know more about your pricing.",
    "Do you offer a free trial for teams?",
    "We are about 40 people, mostly in sales.",
    "Can it integrate with HubSpot?",
    "What does onboarding look like?",
    "Sure, my name is {name}.",
    "You can reach me at {email}",
    "Is there a discount for nonprofits?",
    "How long does setup usually take?",
    "Thanks, that helps!",
]
AI_TEXTS = [
    "Hi! 👋 How can we help you today?",
    "Happy to help with that. What are you looking for?",
    "Great question. Our plans start at 29 € per seat per month.",
    "Yes, every plan includes a 14-day free trial.",
    "Could you tell me your name so I can follow up?",
    "Thanks! What's the best email to reach you?",
    "That email doesn't look right: the domain is missing. Could you check it?",
    "Perfect, a specialist will contact you within one business day.",
]
AI_LATENCIES = (3, 5, 8, 12, 20, 35)
AI_METADATA = [json.dumps({"backend": "scripted", "latency_ms": ms}) for ms in AI_LATENCIES]


@dataclass
class SeedPlan:
    """Everything the row generators share, decided once so tables agree with each other."""

    sessions: int
    messages: int
    days: int
    now: datetime
    site_ids: Sequence[int]
    first_session_id: int
    rng: random.Random
    # Per session (index i is session id first_session_id + i):
    started_at: list[datetime] = field(default_factory=list)
    message_counts: list[int] = field(default_factory=list)
    completes: list[bool] = field(default_factory=list)
    # The webhook endpoint the historical deliveries went to (deliveries_endpoint_ensure).
    endpoint_id: int | None = None

    @property
    def big_session_id(self) -> int:
        return self.first_session_id


@dataclass(frozen=True)
class TableSeed:
    """One table of the data set: which model, which columns, and the rows (tuples) to COPY."""

    model: str
    columns: tuple[str, ...]
    rows: Callable[[SeedPlan], Iterator[tuple[Any, ...]]]
    # True when `columns` includes the primary key: its sequence is moved past the seeded ids.
    sets_ids: bool = False


def _message_counts(sessions: int, messages: int, rng: random.Random) -> list[int]:
    """Messages per session summing exactly to `messages`; the first session gets 500.

    (Fewer when the data set is too small to give every other session one message.)
    """
    big = min(BIG_SESSION_MESSAGES, messages - (sessions - 1))
    rest_sessions = sessions - 1
    rest = messages - big
    if rest_sessions == 0:
        return [messages]
    mean = rest / rest_sessions
    counts = [max(1, round(rng.triangular(1, 2 * mean - 1, mean))) for _ in range(rest_sessions)]
    diff = rest - sum(counts)
    while diff:
        i = rng.randrange(rest_sessions)
        if diff > 0:
            counts[i] += 1
            diff -= 1
        elif counts[i] > 1:
            counts[i] -= 1
            diff += 1
    return [big, *counts]


def plan_build(
    *, sessions: int, messages: int, days: int, site_ids: Sequence[int], first_session_id: int
) -> SeedPlan:
    rng = random.Random(20240601)  # the same data set on every run
    plan = SeedPlan(
        sessions=sessions,
        messages=messages,
        days=days,
        now=timezone.now(),
        site_ids=site_ids,
        first_session_id=first_session_id,
        rng=rng,
    )
    plan.message_counts = _message_counts(sessions, messages, rng)
    span = days * 86_400
    for i in range(sessions):
        # The big session is recent so it sits on the first page of every list.
        offset = 600 if i == 0 else rng.uniform(60, span)
        plan.started_at.append(plan.now - timedelta(seconds=offset))
        plan.completes.append(rng.random() < 0.28)
    return plan


def _session_rows(plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    rng = plan.rng
    sites = plan.site_ids
    people = max(1, plan.sessions // 10)
    for i in range(plan.sessions):
        started = plan.started_at[i]
        count = plan.message_counts[i]
        last = min(started + MESSAGE_GAP * count, plan.now)
        complete = plan.completes[i]
        if complete:
            status = "complete"
        elif plan.now - last < timedelta(minutes=30):
            status = "in_progress"
        else:
            status = "incomplete"
        name = email = ""
        captured = None
        delivery = "none"
        if complete:
            first, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            name = f"{first} {family}"
            # About ten sessions share a person (2-3 of them with a lead, at 28% complete), so
            # the Leads page groups returning visitors as it would in production.
            email = f"lead.{i % people}@example.com"
            captured = last
            roll = rng.random()
            delivery = "delivered" if roll < 0.95 else "failed" if roll < 0.98 else "pending"
        source = rng.choice(UTM_SOURCES)
        roll = rng.random()
        qa = (
            "unchecked"
            if roll < 0.70
            else "passed"
            if roll < 0.88
            else "issue"
            if roll < 0.96
            else "fixed"
        )
        archived = rng.random() < 0.08
        deleted = rng.random() < 0.01
        yield (
            plan.first_session_id + i,  # id
            uuid.UUID(int=rng.getrandbits(128), version=4),  # public_id
            sites[i % len(sites)],  # site_id
            "web" if rng.random() < 0.95 else "messenger",  # channel
            rng.choice(LANDING_PAGES),  # page_url
            rng.choice(REFERRERS),  # referrer
            source,  # utm_source
            UTM_MEDIUMS[source],  # utm_medium
            f"spring-{i % 7}" if source else "",  # utm_campaign
            "Mozilla/5.0 (X11; Linux x86_64) leadchat-bench",  # user_agent
            started,  # started_at
            last,  # last_activity_at
            None if status == "in_progress" else last,  # ended_at
            last,  # updated_at
            status,  # completion_status
            "archived" if archived else "active",  # archive_status
            last if archived else None,  # archived_at
            last if deleted else None,  # deleted_at
            name,  # lead_name
            email,  # lead_email
            lead_key(email),  # lead_key
            captured,  # lead_captured_at
            count > 1,  # ai_engaged
            count,  # message_count
            len(range(0, count, 2)),  # ai_replies_timed: messages 0, 2, 4... are the AI's
            _latency_total(i, count),  # ai_latency_ms_total
            delivery,  # delivery_state
            qa,  # qa_status
            None if qa == "unchecked" else last,  # qa_status_at
        )


def _latency_total(i: int, count: int) -> int:
    """Sum of the latencies `_message_rows` gives session i's replies (its counters agree)."""
    return sum(AI_LATENCIES[(i + j) % len(AI_LATENCIES)] for j in range(0, count, 2))


def _message_rows(plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    gaps = [MESSAGE_GAP * j for j in range(max(plan.message_counts, default=0))]
    for i in range(plan.sessions):
        session_id = plan.first_session_id + i
        started = plan.started_at[i]
        count = plan.message_counts[i]
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]}"
        email = f"{name.lower()}.{i}@example.com"
        for j in range(count):
            created = started + gaps[j]
            if j % 2 == 0:
                yield (
                    session_id,
                    "ai",
                    AI_TEXTS[(j // 2) % len(AI_TEXTS)],
                    created,
                    AI_METADATA[(i + j) % len(AI_METADATA)],
                )
            else:
                text = VISITOR_TEXTS[(i + j // 2) % len(VISITOR_TEXTS)]
                if "{" in text:
                    text = text.format(name=name, email=email)
                yield session_id, "visitor", text, created, "{}"


DELIVERY_COLUMNS = (
    "event_id", "event_type", "kind", "endpoint_id", "session_id", "subject_email", "payload",
    "status", "attempts", "next_attempt_at", "last_attempt_at", "last_status_code",
    "last_latency_ms", "delivered_at", "created_at",
)  # fmt: skip


def _lead_payload(event_id: str, session_id: int, email: str, at: datetime) -> str:
    """A payload the size and shape of sessions_app.delivery.webhooks.lead_payload's."""
    return json.dumps(
        {
            "type": "lead.captured",
            "event_id": event_id,
            "timestamp": at.isoformat(),
            "data": {
                "session_id": str(uuid.UUID(int=session_id)),
                "lead": {"name": "Bench Lead", "email": email, "phone": "", "data": {}},
                "source": {"page_url": LANDING_PAGES[session_id % len(LANDING_PAGES)]},
                "transcript_url": f"https://leadchat.example/dashboard/sessions/{session_id}/",
            },
        }
    )


def _delivery_rows(plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    """One delivery per session (100,000 at the default scale), none of them due.

    Complete sessions: their lead.captured webhook, delivered (a few failed after 9 tries).
    The others: QA emails (kind email, no endpoint), delivered. Nothing is pending, so the
    outbox drain measurement drains only its own rows.
    """
    rng = random.Random(7)
    for i in range(plan.sessions):
        session_id = plan.first_session_id + i
        at = plan.started_at[i] + MESSAGE_GAP * plan.message_counts[i]
        event_id = f"evt_bench_{session_id}"
        email = f"lead.{i}@example.com"
        failed = rng.random() < 0.03
        if plan.completes[i]:
            yield (
                event_id, "lead.captured", "webhook", plan.endpoint_id, session_id, email,
                _lead_payload(event_id, session_id, email, at),
                "failed" if failed else "delivered", 9 if failed else 1, at, at,
                500 if failed else 200, rng.randint(20, 400), None if failed else at, at,
            )  # fmt: skip
        else:
            payload = json.dumps(
                {"to": ["qa@example.com"], "subject": f"QA issue on session {session_id}",
                 "text": "A QA reviewer flagged an issue.", "html": ""}
            )  # fmt: skip
            yield (
                event_id, "qa.issue_flagged", "email", None, session_id, "", payload,
                "delivered", 1, at, at, 200, rng.randint(80, 600), at, at,
            )  # fmt: skip


def _pending_rows(count: int, endpoint_id: int, session_ids: Sequence[int]):
    now = timezone.now()
    batch = uuid.uuid4().hex[:12]
    for n in range(count):
        event_id = f"evt_drain_{batch}_{n}"
        session_id = session_ids[n % len(session_ids)] if session_ids else None
        email = f"drain.{n}@example.com"
        yield (
            event_id, "lead.captured", "webhook", endpoint_id, session_id, email,
            _lead_payload(event_id, session_id or n, email, now),
            "pending", 0, now, None, None, None, None, now,
        )  # fmt: skip


def pending_deliveries_copy(*, count: int, endpoint_id: int) -> int:
    """COPY `count` lead webhooks due now to `endpoint_id`, over the complete sessions."""
    from sessions_app.models import ChatSession

    session_ids = list(
        ChatSession.objects.filter(completion_status="complete")
        .order_by("pk")
        .values_list("pk", flat=True)[:count]
    )
    seed = TableSeed(
        "sessions_app.Delivery",
        DELIVERY_COLUMNS,
        lambda plan: _pending_rows(count, endpoint_id, session_ids),
    )
    return table_copy(seed, None)  # type: ignore[arg-type]  # rows ignore the plan


def deliveries_endpoint_ensure() -> int:
    from sessions_app.models import WebhookEndpoint

    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        name="Bench historical endpoint",
        # Inactive: the measurements' own leads are not queued to it, nothing of it is due.
        defaults={
            "url": "http://127.0.0.1:9/never-called",
            "events": ["lead.captured"],
            "is_active": False,
            "disabled_reason": "Benchmark history only.",
        },
    )
    return endpoint.pk


SESSION_COLUMNS = (
    "id", "public_id", "site_id", "channel", "page_url", "referrer", "utm_source", "utm_medium",
    "utm_campaign", "user_agent", "started_at", "last_activity_at", "ended_at", "updated_at",
    "completion_status", "archive_status", "archived_at", "deleted_at", "lead_name", "lead_email",
    "lead_key", "lead_captured_at", "ai_engaged", "message_count", "ai_replies_timed",
    "ai_latency_ms_total", "delivery_state", "qa_status", "qa_status_at",
)  # fmt: skip

# The data set, in dependency order. The outbox drain's due rows are not part of it: each drain
# round COPYs its own (pending_deliveries_copy).
SEED_TABLES: list[TableSeed] = [
    TableSeed("sessions_app.ChatSession", SESSION_COLUMNS, _session_rows, sets_ids=True),
    TableSeed(
        "sessions_app.ChatMessage",
        ("session_id", "role", "text", "created_at", "metadata"),
        _message_rows,
    ),
    TableSeed("sessions_app.Delivery", DELIVERY_COLUMNS, _delivery_rows),
]


@dataclass(frozen=True)
class _Filler:
    column: str
    field: Field
    per_row: bool  # a callable default (uuid4...) is called for every row


def _fillers(model: Any, columns: Sequence[str]) -> list[_Filler]:
    """NOT NULL columns the seed does not list, filled from the model's defaults."""
    fillers = []
    for f in model._meta.concrete_fields:
        if (
            f.column in columns
            or f.null
            or (f.primary_key and f.get_internal_type().endswith("AutoField"))
        ):
            continue
        fillers.append(_Filler(f.column, f, per_row=f.has_default() and callable(f.default)))
    return fillers


def _filler_value(filler: _Filler) -> Any:
    value = filler.field.get_default()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return filler.field.get_db_prep_save(value, connection)


def table_copy(seed: TableSeed, plan: SeedPlan) -> int:
    """COPY one table's rows in; returns how many rows were written."""
    model = apps.get_model(seed.model)
    table = model._meta.db_table
    fillers = _fillers(model, seed.columns)
    constant = tuple(_filler_value(f) for f in fillers if not f.per_row)
    per_row = [f for f in fillers if f.per_row]
    columns = [*seed.columns, *(f.column for f in fillers if not f.per_row)]
    columns += [f.column for f in per_row]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    written = 0
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
            write = copy.write_row
            if per_row:
                for row in seed.rows(plan):
                    write(row + constant + tuple(_filler_value(f) for f in per_row))
                    written += 1
            elif constant:
                for row in seed.rows(plan):
                    write(row + constant)
                    written += 1
            else:
                for row in seed.rows(plan):
                    write(row)
                    written += 1
        if seed.sets_ids:
            # Identifiers come from the model's meta, never from input.
            pk = connection.ops.quote_name(model._meta.pk.column)
            highest = f"SELECT MAX({pk}) FROM {connection.ops.quote_name(table)}"  # noqa: S608
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), ({highest}))",
                [table, model._meta.pk.column],
            )
    return written


def sites_ensure(count: int = 5) -> list[int]:
    """A handful of widget sites the sessions are spread over (few rows: the ORM is fine)."""
    from widget.models import Site

    ids = []
    for n in range(1, count + 1):
        site, _ = Site.objects.get_or_create(
            name=f"Bench site {n}",
            defaults={"allowed_origins": [f"https://site{n}.example.com"], "is_active": True},
        )
        ids.append(site.pk)
    return ids


def next_session_id() -> int:
    from sessions_app.models import ChatSession

    last = ChatSession.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def seed_database(
    *,
    sessions: int,
    messages: int,
    days: int = 90,
    tables: Sequence[TableSeed] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[SeedPlan, dict[str, int]]:
    """Seed every table of `tables` (default SEED_TABLES); returns the plan and rows per model.

    Runs in the caller's transaction state; the runner calls `tables_analyze` afterwards.
    """
    if connection.vendor != "postgresql":
        raise RuntimeError("The seeder uses COPY: it needs PostgreSQL.")
    if sessions < 1 or messages < sessions:
        raise ValueError("Need at least one session and at least one message per session.")
    plan = plan_build(
        sessions=sessions,
        messages=messages,
        days=days,
        site_ids=sites_ensure(),
        first_session_id=next_session_id(),
    )
    plan.endpoint_id = deliveries_endpoint_ensure()
    counts: dict[str, int] = {}
    # The stats rollups' triggers (sessions_app.rollups) would add a delta row per copied
    # session: they are off for the COPY, and one rebuild after it computes the rollups. Inside
    # a transaction (the tests) PostgreSQL refuses the ALTER while the deferred foreign key
    # checks of earlier rows are pending, so there they stay on; the rebuild replaces their
    # deltas, and the rollups come out the same.
    triggers_off = not connection.in_atomic_block
    if triggers_off:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {ROLLUP_SESSION_TABLE} DISABLE TRIGGER USER")
    try:
        for seed in tables if tables is not None else SEED_TABLES:
            started = timezone.now()
            counts[seed.model] = table_copy(seed, plan)
            seconds = (timezone.now() - started).total_seconds()
            progress(f"  {seed.model}: {counts[seed.model]:,} rows in {seconds:.1f} s")
    finally:
        if triggers_off:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {ROLLUP_SESSION_TABLE} ENABLE TRIGGER USER")
    started = timezone.now()
    rows = rollups_rebuild()
    seconds = (timezone.now() - started).total_seconds()
    progress(f"  stats rollups: {rows:,} rows rebuilt in {seconds:.1f} s")
    return plan, counts


def tables_analyze(tables: Sequence[TableSeed] | None = None) -> None:
    """VACUUM ANALYZE the seeded tables, as autovacuum would have long since done in production.

    Must run outside a transaction (VACUUM refuses to run inside one).
    """
    with connection.cursor() as cursor:
        for seed in tables if tables is not None else SEED_TABLES:
            table = apps.get_model(seed.model)._meta.db_table
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
