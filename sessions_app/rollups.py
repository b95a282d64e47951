"""Stats rollups: the figures of `selectors.sessions_stats` per 15-minute bucket, kept by the
database itself in the transaction of every session write.

Why triggers: a figure changes whenever a session row does (a message, a lead, a QA move, an
archive, the trash, a purge, an erasure, a retention run, an ingest, a raw `.update()` in a
command or a test). A trigger on `chatsession` sees every one of those writes, whatever the
code path, so no write can forget to keep the rollups (the randomised test in
sessions_app/tests/dashboard/test_rollups.py checks them against a rebuild and the stats against
the old raw-table answer).

How: a rollup row is a *delta*. For each changed session row the trigger inserts, per key
(bucket, site, channel, utm_source, landing page), the new row's contribution minus the old
one's (one row for most updates; nothing when no figure moved). Inserts never conflict, so two
visitors' writes never wait on each other's rollup rows, and the figures are exact the moment
the write commits (no lag). Readers SUM over the rows of a range, so any number of rows per key
gives the same answer. The worker's `rollups_compact` job folds the delta rows into one
compacted row per key, which keeps the rows to read per key at about one.

A session contributes twice: its figures to the bucket of `started_at`, and its lead to the
bucket of `lead_captured_at` (the stats count leads by the day they were captured). Sessions in
the trash contribute nothing. Buckets are UTC epoch seconds // 900: a local day of any time
zone whose offset is a multiple of 15 minutes (all of today's) is a whole number of buckets.

`rollups_rebuild` recomputes a range from the raw rows with the same contribution SQL the
trigger uses; a rebuild of a bucket is what the live rows add up to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models, transaction

from sessions_app.models import CompletionStatus, QAStatus

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 900
JOB_NAME = "rollups_compact"
SESSION_TABLE = "sessions_app_chatsession"
ROLLUP_TABLE = "sessions_app_sessionrollup"
# Rows folded per compaction pass (one short transaction each).
COMPACT_BATCH = 5000
# pg_try_advisory_xact_lock key of the compaction: one worker compacts at a time (the others
# move on to their deliveries), so two never race to create the compacted row of a key.
COMPACT_LOCK = 0x726F6C6C  # "roll"

COMPLETION_FIELDS = tuple(f"completion_{value}" for value in CompletionStatus.values)
QA_FIELDS = tuple(f"qa_{value}" for value in QAStatus.values)
KEYS = ("bucket", "site_id", "channel", "utm_source", "page")
FIGURES = (
    "sessions",
    "engaged",
    "needs_human",
    "messages",
    "latency_ms_total",
    "replies_timed",
    "tokens",
    *COMPLETION_FIELDS,
    *QA_FIELDS,
    "leads",
)
# Session columns a figure or a key depends on: an update that changes none of them (the
# activity stamps, notes, the delivery state...) does not fire the trigger.
WATCHED = (
    "started_at",
    "lead_captured_at",
    "deleted_at",
    "site_id",
    "channel",
    "utm_source",
    "page_url",
    "ai_engaged",
    "needs_human",
    "message_count",
    "ai_latency_ms_total",
    "ai_replies_timed",
    "ai_tokens",
    "completion_status",
    "qa_status",
)


class SessionRollup(models.Model):
    """Figures of the sessions of one key: a trigger's delta, or the compacted sum of many.

    Counts may be negative in a delta (a session leaving the key). No unique key: readers sum,
    so two rows of one key are as right as one (the compaction keeps it near one).
    """

    bucket = models.BigIntegerField(help_text="UTC epoch seconds // 900.")
    # No foreign key constraint: the trigger writes the session's site id as it is, and a site
    # with sessions cannot be deleted (ChatSession.site is PROTECT).
    site = models.ForeignKey(
        "widget.Site",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(max_length=16)
    utm_source = models.CharField(max_length=200)
    # page_url without its query and fragment (selectors.page_url_without_query).
    page = models.CharField(max_length=2000)
    compacted = models.BooleanField(default=False)

    sessions = models.BigIntegerField(default=0)
    engaged = models.BigIntegerField(default=0)
    needs_human = models.BigIntegerField(default=0)
    messages = models.BigIntegerField(default=0)
    latency_ms_total = models.FloatField(default=0)
    replies_timed = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    completion_in_progress = models.BigIntegerField(default=0)
    completion_complete = models.BigIntegerField(default=0)
    completion_incomplete = models.BigIntegerField(default=0)
    qa_unchecked = models.BigIntegerField(default=0)
    qa_passed = models.BigIntegerField(default=0)
    qa_issue = models.BigIntegerField(default=0)
    qa_fixed = models.BigIntegerField(default=0)
    # Leads captured in this bucket (by lead_captured_at, not the session's start).
    leads = models.BigIntegerField(default=0)

    class Meta:
        db_table = ROLLUP_TABLE
        indexes = [
            models.Index(fields=["bucket"], name="rollup_bucket"),
            models.Index(fields=["site", "bucket"], name="rollup_site_bucket"),
            # The compaction's queue: the delta rows, oldest first.
            models.Index(fields=["id"], condition=models.Q(compacted=False), name="rollup_deltas"),
        ]

    def __str__(self) -> str:
        return f"{bucket_start(self.bucket):%Y-%m-%d %H:%M} {self.channel} {self.page}"


def bucket_of(moment: datetime) -> int:
    """The bucket a moment falls in (UTC epoch seconds // 900)."""
    return int(moment.timestamp()) // BUCKET_SECONDS


def bucket_start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * BUCKET_SECONDS, tz=UTC)


# --- The contribution SQL (shared by the triggers and the rebuild) ------------------------------


class _Dialect:
    def __init__(self, vendor: str, *, with_params: bool) -> None:
        if vendor not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"Rollups support PostgreSQL and SQLite, not {vendor}.")
        self.vendor = vendor
        # Django's cursors read % as a placeholder marker when parameters are passed.
        self.pct = "%%" if with_params else "%"

    def bucket(self, column: str) -> str:
        if self.vendor == "postgresql":
            return f"floor(extract(epoch from {column}) / {BUCKET_SECONDS})::bigint"
        return f"(CAST(strftime('{self.pct}s', {column}) AS INTEGER) / {BUCKET_SECONDS})"

    def _position(self, expression: str, char: str) -> str:
        if self.vendor == "postgresql":
            return f"strpos({expression}, '{char}')"
        return f"instr({expression}, '{char}')"

    def _cut_at(self, expression: str, char: str) -> str:
        position = self._position(expression, char)
        return (
            f"(CASE WHEN {position} > 0 THEN substr({expression}, 1, {position} - 1) "
            f"ELSE {expression} END)"
        )

    def page(self, column: str) -> str:
        """The landing page as the stats show it: without its #fragment and ?query
        (selectors.page_url_without_query)."""
        return self._cut_at(self._cut_at(column, "#"), "?")

    @property
    def false(self) -> str:
        return "false" if self.vendor == "postgresql" else "0"


def _flag(condition: str) -> str:
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _started_figures(row: str) -> dict[str, str]:
    """SQL of each figure one session row adds at the bucket of its start."""
    return {
        "sessions": "1",
        "engaged": _flag(f"{row}.ai_engaged"),
        "needs_human": _flag(f"{row}.needs_human"),
        "messages": f"{row}.message_count",
        "latency_ms_total": f"{row}.ai_latency_ms_total",
        "replies_timed": f"{row}.ai_replies_timed",
        "tokens": f"{row}.ai_tokens",
        **{
            f: _flag(f"{row}.completion_status = '{f.removeprefix('completion_')}'")
            for f in COMPLETION_FIELDS
        },
        **{f: _flag(f"{row}.qa_status = '{f.removeprefix('qa_')}'") for f in QA_FIELDS},
        "leads": "0",
    }


def _contributions(d: _Dialect, row: str, sign: int, source: str, where: str) -> list[str]:
    """SELECTs of what one session row (`row`: NEW, OLD or a table alias) adds to the rollups,
    times `sign`: its figures at the bucket of its start, its lead at the bucket of its capture."""
    s = "" if sign == 1 else "-"
    keys = (
        f"{row}.site_id AS site_id, {row}.channel AS channel, "
        f"{row}.utm_source AS utm_source, {d.page(row + '.page_url')} AS page"
    )
    started_figures = _started_figures(row)
    # 0.0 for the float column keeps both halves of the UNION the same type on PostgreSQL.
    lead_figures = {f: ("0.0" if f == "latency_ms_total" else "0") for f in FIGURES}
    lead_figures["leads"] = "1"
    live = f"{row}.deleted_at IS NULL"
    out = []
    for column, figures, extra in (
        ("started_at", started_figures, ""),
        ("lead_captured_at", lead_figures, f" AND {row}.lead_captured_at IS NOT NULL"),
    ):
        values = ", ".join(
            f"{figures[f]} AS {f}" if figures[f] in ("0", "0.0") else f"{s}{figures[f]} AS {f}"
            for f in FIGURES
        )
        condition = live + extra
        if where:
            condition += " AND " + where.format(column=f"{row}.{column}")
        out.append(
            f"SELECT {d.bucket(row + '.' + column)} AS bucket, {keys}, {values}{source} "
            f"WHERE {condition}"
        )
    return out


def _insert_sum(d: _Dialect, selects: Sequence[str], *, compacted: bool) -> str:
    """INSERT the per-key sums of `selects` (keys with every figure 0 left out)."""
    columns = ", ".join((*KEYS, "compacted", *FIGURES))
    sums = ", ".join(f"SUM({f})" for f in FIGURES)
    nonzero = " OR ".join(f"SUM({f}) <> 0" for f in FIGURES)
    union = " UNION ALL ".join(selects)
    flag = "true" if compacted and d.vendor == "postgresql" else ("1" if compacted else d.false)
    # Every name here is a constant of this module.
    return (
        f"INSERT INTO {ROLLUP_TABLE} ({columns}) "  # noqa: S608
        f"SELECT bucket, site_id, channel, utm_source, page, {flag}, {sums} "
        f"FROM ({union}) AS contributions "
        f"GROUP BY bucket, site_id, channel, utm_source, page HAVING {nonzero}"
    )


def trigger_sql(vendor: str) -> list[str]:
    """DDL of the triggers that keep the rollups (run by migration 0018 through
    schema_editor.execute, which passes parameters: a literal % is written %%)."""
    d = _Dialect(vendor, with_params=True)
    new = _contributions(d, "NEW", 1, "", "")
    old = _contributions(d, "OLD", -1, "", "")
    on_insert = _insert_sum(d, new, compacted=False)
    on_delete = _insert_sum(d, old, compacted=False)
    on_update = _insert_sum(d, old + new, compacted=False)
    if vendor == "postgresql":
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
        # The hot path (a message, a QA move, tokens): a live session whose key, start and
        # lead capture stay put moves figures within one key: one row of differences, without
        # the general case's UNION and GROUP BY (about half the cost of a session update).
        same_key = " AND ".join(
            [
                "OLD.deleted_at IS NULL",
                "NEW.deleted_at IS NULL",
                *(
                    f"OLD.{c} IS NOT DISTINCT FROM NEW.{c}"
                    for c in ("started_at", "lead_captured_at", "site_id", "channel")
                ),
                "OLD.utm_source = NEW.utm_source",
                "OLD.page_url = NEW.page_url",
            ]
        )
        new_figures, old_figures = _started_figures("NEW"), _started_figures("OLD")
        differences = ", ".join(f"({new_figures[f]}) - ({old_figures[f]})" for f in FIGURES)
        on_update_same_key = (
            f"INSERT INTO {ROLLUP_TABLE} ({', '.join((*KEYS, 'compacted', *FIGURES))}) "  # noqa: S608
            f"VALUES ({d.bucket('NEW.started_at')}, NEW.site_id, NEW.channel, NEW.utm_source, "
            f"{d.page('NEW.page_url')}, false, {differences})"
        )
        return [
            f"""
            CREATE OR REPLACE FUNCTION sessions_app_rollup_apply() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND {same_key} THEN
                    {on_update_same_key};
                ELSIF TG_OP = 'INSERT' THEN
                    {on_insert};
                ELSIF TG_OP = 'DELETE' THEN
                    {on_delete};
                ELSE
                    {on_update};
                END IF;
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql
            """,
            f"""CREATE TRIGGER sessions_app_rollup_insert AFTER INSERT OR DELETE
                ON {SESSION_TABLE} FOR EACH ROW EXECUTE FUNCTION sessions_app_rollup_apply()""",
            f"""CREATE TRIGGER sessions_app_rollup_update AFTER UPDATE ON {SESSION_TABLE}
                FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION sessions_app_rollup_apply()""",
        ]
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
    return [
        f"""CREATE TRIGGER sessions_app_rollup_insert AFTER INSERT ON {SESSION_TABLE}
            FOR EACH ROW BEGIN {on_insert}; END""",
        f"""CREATE TRIGGER sessions_app_rollup_delete AFTER DELETE ON {SESSION_TABLE}
            FOR EACH ROW BEGIN {on_delete}; END""",
        f"""CREATE TRIGGER sessions_app_rollup_update AFTER UPDATE ON {SESSION_TABLE}
            FOR EACH ROW WHEN {changed} BEGIN {on_update}; END""",
    ]


def drop_trigger_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS sessions_app_rollup_insert ON {SESSION_TABLE}",
            f"DROP TRIGGER IF EXISTS sessions_app_rollup_update ON {SESSION_TABLE}",
            "DROP FUNCTION IF EXISTS sessions_app_rollup_apply()",
        ]
    return [
        f"DROP TRIGGER IF EXISTS sessions_app_rollup_{op}" for op in ("insert", "delete", "update")
    ]


# --- Rebuild ------------------------------------------------------------------------------------


def rollups_rebuild(
    *, since: datetime | None = None, site: int | None = None, using: Any = None
) -> int:
    """Recompute the rollups of buckets from `since` (default: all) for one site (default: all)
    from the raw session rows, in one transaction; returns the rows written.

    Rows of those buckets are replaced (deltas and compacted ones alike). On PostgreSQL the
    rollup table is locked against writes for the duration (SHARE ROW EXCLUSIVE: readers go on,
    session writes wait at their trigger), so no write lands between the read of the raw rows and
    the swap.
    """
    conn = using or connection
    d = _Dialect(conn.vendor, with_params=True)
    where_parts, params = [], []
    delete_where, delete_params = ["1 = 1"], []
    if since is not None:
        first = bucket_of(since)
        where_parts.append("{column} >= %s")
        params.append(bucket_start(first))
        delete_where.append("bucket >= %s")
        delete_params.append(first)
    if site is not None:
        where_parts.append(f"s.site_id = {int(site)}")
        delete_where.append("site_id = %s")
        delete_params.append(site)
    where = " AND ".join(where_parts)
    selects = _contributions(d, "s", 1, f" FROM {SESSION_TABLE} s", where)
    # Each of the two SELECTs uses the range parameter once.
    insert_params = params * 2 if since is not None else []
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {ROLLUP_TABLE} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"DELETE FROM {ROLLUP_TABLE} WHERE {' AND '.join(delete_where)}",  # noqa: S608
            delete_params,
        )
        cursor.execute(_insert_sum(d, selects, compacted=True), insert_params)
        return int(cursor.rowcount)


# --- Compaction (a job of the delivery worker) ---------------------------------------------------


def rollups_compact(worker: str = "", batch_size: int = 0, *, limit: int = COMPACT_BATCH) -> int:
    """Fold up to `limit` delta rows into the compacted row of their key; returns how many.

    Additive, so it commutes with the triggers' inserts: readers see the same sums before and
    after (one statement reads either side of the commit).
    """
    columns = ", ".join((*KEYS, *FIGURES))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [COMPACT_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        cursor.execute(
            f"DELETE FROM {ROLLUP_TABLE} WHERE id IN (SELECT id FROM {ROLLUP_TABLE} "  # noqa: S608
            f"WHERE NOT compacted ORDER BY id LIMIT %s) RETURNING {columns}",
            [limit],
        )
        deltas = cursor.fetchall()
        if not deltas:
            return 0
        sums: dict[tuple[Any, ...], list[Any]] = {}
        for row in deltas:
            key, figures = tuple(row[: len(KEYS)]), row[len(KEYS) :]
            total = sums.setdefault(key, [0] * len(FIGURES))
            for i, value in enumerate(figures):
                total[i] += value
        existing: dict[tuple[Any, ...], SessionRollup] = {}
        for row in SessionRollup.objects.filter(
            compacted=True, bucket__in={key[0] for key in sums}
        ).order_by("id"):
            existing.setdefault(_key(row), row)
        changed: list[SessionRollup] = []
        created: list[SessionRollup] = []
        emptied: list[SessionRollup] = []
        for key, figures in sums.items():
            rollup = existing.get(key)
            if rollup is None:
                if not any(figures):
                    continue  # deltas that cancel out (a session started, then erased)
                created.append(
                    SessionRollup(
                        compacted=True,
                        **dict(zip(KEYS, key, strict=True)),
                        **dict(zip(FIGURES, figures, strict=True)),
                    )
                )
                continue
            for name, value in zip(FIGURES, figures, strict=True):
                setattr(rollup, name, getattr(rollup, name) + value)
            # A key whose sessions all left it (trashed, erased, moved): nothing to keep.
            empty = not any(getattr(rollup, name) for name in FIGURES)
            (emptied if empty else changed).append(rollup)
        if changed:
            SessionRollup.objects.bulk_update(changed, FIGURES, batch_size=500)
        if created:
            SessionRollup.objects.bulk_create(created, batch_size=500)
        if emptied:
            SessionRollup.objects.filter(pk__in=[rollup.pk for rollup in emptied]).delete()
    return len(deltas)


def rollups_compact_all() -> int:
    """Compact until no delta is left (tests, the rebuild command's --compact)."""
    total = 0
    while n := rollups_compact():
        total += n
    return total


def rollups_clear_if_no_sessions(**kwargs: Any) -> None:
    """After `migrate` and `flush` (post_migrate): with no session left, no rollup may be.

    SQLite's flush empties the tables one by one in no set order, and emptying chatsession
    after the rollups fires the delete trigger: its negative deltas would outlive the flush
    (PostgreSQL's TRUNCATE fires no row trigger). With no session every figure is 0 anyway.
    """
    from sessions_app.models import ChatSession

    using = kwargs.get("using") or "default"
    if not ChatSession.objects.using(using).exists():
        SessionRollup.objects.using(using).all().delete()


def _key(rollup: Any) -> tuple[Any, ...]:
    return tuple(getattr(rollup, name) for name in KEYS)


def rollups_by_key(rows: Iterable[Any] | None = None) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The sums per key (keys whose figures are all 0 left out): what the rollups say,
    whatever their split into deltas and compacted rows. Tests compare live and rebuilt."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for rollup in rows if rows is not None else SessionRollup.objects.all():
        total = out.setdefault(_key(rollup), [0] * len(FIGURES))
        for i, name in enumerate(FIGURES):
            total[i] += getattr(rollup, name)
    return {
        key: tuple(round(v, 3) if isinstance(v, float) else v for v in figures)
        for key, figures in out.items()
        if any(round(v, 6) != 0 for v in figures)
    }


def deltas_pending() -> int:
    return SessionRollup.objects.filter(compacted=False).count()
