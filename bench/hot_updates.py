"""HOT updates of `sessions_app_chatsession` under widget messages, before and after the index diet.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lc_outbox \
        .venv/bin/python -m bench.hot_updates --sessions 50000 --messages 5000

Every widget message updates its session row (`message_add`: message_count, last_activity_at,
updated_at). PostgreSQL can make that update HOT (heap-only: no new entry in any index) only when
no column the update changes is in any index, key or predicate, partial or not; otherwise each
message writes one entry into every index of the table.

On `<DATABASE_URL's name>_hot` (created and dropped here) it seeds `--sessions` sessions (COPY),
then runs `--messages` visitor messages through `message_add` on random sessions three times:
with sessions_app migrated back to 0015 (before the index diet), at the latest migration
(0017_index_diet), and, as a what-if, with the two indexes on columns every message writes
dropped as well (session_updated, the changes feed's; session_lead_key, the Leads page's). Per
step: the HOT ratio (`n_tup_hot_upd / n_tup_upd` from pg_stat_user_tables), the indexes on the
table, and the WAL written per message.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence

from bench.run import (
    ROOT,
    database_create,
    database_drop,
    database_url_check,
    log,
    side_bench_database,
    side_bench_env,
)

TABLE = "sessions_app_chatsession"


def _stats() -> tuple[int, int, int]:
    """(n_tup_upd, n_tup_hot_upd, WAL position in bytes), this backend's counts flushed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")  # the flush happens when this backend goes idle
        time.sleep(1.2)
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, pg_current_wal_lsn() - '0/0'::pg_lsn "
            "FROM pg_stat_user_tables WHERE relname = %s",
            [TABLE],
        )
        upd, hot, wal = cursor.fetchone()
    return int(upd), int(hot), int(wal)


def _indexes() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [TABLE])
        return int(cursor.fetchone()[0])


def _messages(count: int, session_ids: Sequence[int], rng: random.Random) -> float:
    from sessions_app.models import ChatSession, MessageRole
    from sessions_app.services import message_add

    started = time.perf_counter()
    for n in range(count):
        session = ChatSession.objects.get(pk=rng.choice(session_ids))
        message_add(session=session, role=MessageRole.VISITOR, text=f"Bench message {n}")
    return time.perf_counter() - started


def _step(name: str, *, messages: int, session_ids: Sequence[int], seed: int) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        # As autovacuum leaves a table in service: its pages have room for new row versions.
        cursor.execute(f"VACUUM (ANALYZE) {TABLE}")
    upd0, hot0, wal0 = _stats()
    seconds = _messages(messages, session_ids, random.Random(seed))
    upd1, hot1, wal1 = _stats()
    updates, hot = upd1 - upd0, hot1 - hot0
    ratio = hot / updates if updates else 0.0
    line = (
        f"| {name} | {_indexes()} | {updates:,} | {hot:,} | {ratio:.1%} | "
        f"{(wal1 - wal0) / messages:,.0f} B | {1000 * seconds / messages:.2f} ms |"
    )
    log(line)
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args(argv)
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    db_url, db_name = side_bench_database(user_url, "hot")
    database_create(user_url, db_name, reuse=False)
    os.environ.update({**side_bench_env(db_url, {}), "DJANGO_SETTINGS_MODULE": "leadchat.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from bench.seed import SEED_TABLES, seed_database
    from sessions_app.models import ChatSession

    lines = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("migrate", "sessions_app", "0015", verbosity=0, interactive=False)
        sessions = SEED_TABLES[0]
        seed_database(sessions=options.sessions, messages=options.sessions, tables=[sessions])
        session_ids = list(ChatSession.objects.not_deleted().values_list("pk", flat=True))
        common = {"messages": options.messages, "session_ids": session_ids}
        lines.append(_step("before (0015)", seed=1, **common))
        call_command("migrate", "sessions_app", verbosity=0, interactive=False)
        lines.append(_step("after (0017_index_diet)", seed=2, **common))
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX session_updated")
            cursor.execute("DROP INDEX session_lead_key")
        lines.append(
            _step("what-if: also without session_updated, session_lead_key", seed=3, **common)
        )
    finally:
        connections.close_all()
        if not options.keep_db:
            database_drop(user_url, db_name)
    print()
    print(
        f"{options.messages:,} visitor messages (`message_add`) on random sessions of "
        f"{options.sessions:,}; HOT ratio = n_tup_hot_upd / n_tup_upd of {TABLE}:"
    )
    print()
    print("| step | indexes | updates | HOT | HOT ratio | WAL per message | time per message |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
