"""The outbox at volume: how long N worker processes take to drain a backlog of lead webhooks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lc_outbox \
        .venv/bin/python -m bench.outbox_drain --rows 100000 --workers 4
    ... --workers 1,2,4 --concurrency 8 --batch-size 100 --keep-db

Like the other side benchmarks it never touches the database DATABASE_URL names: it creates
`<that name>_drain` on the same server, migrates it and seeds one session per row (COPY),
then for each worker count queues `--rows` due `lead.captured` deliveries (COPY, shaped like
`lead_deliveries_enqueue` makes them, one per session) to one endpoint at a loopback receiver,
starts that many `manage.py deliver_webhooks --once` processes (production settings) and waits
for them to exit. The target of issue 17 is 1,000 deliveries/s with 4 workers.

The receiver is a few lines of asyncio in this process (it parses only the request line, the
`webhook-id` and the body length, and answers 200 in one send), so it costs a small part of what
the workers spend: the figure is the outbox's, not the receiver's. It counts every request by
`webhook-id`: a row received twice is reported (and fails the run), as is a row the database
does not show delivered with exactly one attempt.

Per run: the drain time (first request to last at the receiver, and the workers' wall time
including their start), deliveries/s over the drain, the best and median one-second windows,
and the CPU the workers used per delivery (from their rusage). PostgreSQL and the receiver
share the same 2 cores, so the figures are for this machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.run import (
    OUT_DIR,
    ROOT,
    database_create,
    database_drop,
    database_url_check,
    log,
    side_bench_database,
    side_bench_env,
)

TARGET_PER_SECOND_4_WORKERS = 1000
ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


@dataclass
class FastReceiver:
    """A loopback HTTP/1.1 keep-alive receiver on asyncio, answering 200 to every POST."""

    ids: Counter[str] = field(default_factory=Counter)
    stamps: list[float] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def reset(self) -> None:
        self._loop.call_soon_threadsafe(self._reset)

    def _reset(self) -> None:
        self.ids.clear()
        self.stamps.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                event_id = ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    lowered = name.lower()
                    if lowered == b"content-length":
                        length = int(value)
                    elif lowered == b"webhook-id":
                        event_id = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                self.ids[event_id] += 1
                self.stamps.append(time.perf_counter())
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await server.serve_forever()

        with contextlib.suppress(RuntimeError):  # stopped by __exit__
            self._loop.run_until_complete(start())

    def __enter__(self) -> FastReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


@dataclass
class Drain:
    workers: int
    rows: int
    received: int
    duplicates: int
    delivered: int
    attempts: int
    drain_seconds: float
    wall_seconds: float
    cpu_seconds: float
    windows: list[int]

    @property
    def rate(self) -> float:
        return self.received / self.drain_seconds if self.drain_seconds else 0.0

    @property
    def correct(self) -> bool:
        return (
            self.duplicates == 0
            and self.received == self.rows
            and self.delivered == self.rows
            and self.attempts == self.rows
        )


def sessions_seed(count: int) -> list[int]:
    """`count` sessions (COPY, bench.seed's rows), one per delivery as real leads have."""
    from bench.seed import SEED_TABLES, seed_database, tables_analyze
    from sessions_app.models import ChatSession

    sessions = SEED_TABLES[0]
    seed_database(sessions=count, messages=count, tables=[sessions])
    tables_analyze([sessions])
    return list(ChatSession.objects.order_by("pk").values_list("pk", flat=True)[:count])


def backlog_create(*, rows: int, receiver_url: str, session_ids: Sequence[int]) -> None:
    """`rows` lead webhooks due now to a fresh endpoint; earlier rounds' endpoints switched off
    (their rows are all delivered: each round drains its own backlog)."""
    from bench.seed import DELIVERY_COLUMNS, TableSeed, _pending_rows, table_copy
    from sessions_app.delivery import webhook_endpoint_set_active
    from sessions_app.models import ChatSession, DeliveryState, WebhookEndpoint

    for old in WebhookEndpoint.objects.filter(name__startswith="Bench drain", is_active=True):
        webhook_endpoint_set_active(endpoint=old, active=False, reason="An earlier bench round.")
    endpoint = WebhookEndpoint.objects.create(
        name=f"Bench drain {time.time_ns()}", url=receiver_url, events=["lead.captured"]
    )
    seed = TableSeed(
        "sessions_app.Delivery",
        DELIVERY_COLUMNS,
        lambda plan: _pending_rows(rows, endpoint.pk, session_ids),
    )
    table_copy(seed, None)  # type: ignore[arg-type]  # the rows ignore the plan
    # As lead_deliveries_enqueue leaves them: the sessions wait for their webhook.
    ChatSession.objects.filter(pk__in=session_ids).update(delivery_state=DeliveryState.PENDING)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) sessions_app_delivery")


def drain(
    *,
    workers: int,
    rows: int,
    receiver: FastReceiver,
    session_ids: Sequence[int],
    env: dict[str, str],
    command: Sequence[str],
) -> Drain:
    from sessions_app.models import Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint

    backlog_create(rows=rows, receiver_url=receiver.url, session_ids=session_ids)
    endpoint = WebhookEndpoint.objects.get(name__startswith="Bench drain", is_active=True)
    receiver.reset()
    time.sleep(0.2)
    started = time.perf_counter()
    # A file, not a pipe: a worker logging more than a pipe holds would block on it.
    errors = [OUT_DIR / f"drain-{workers}-{n}.stderr" for n in range(workers)]
    procs = []
    for n, path in enumerate(errors):
        with path.open("w") as stderr:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", *command, "--name", f"drain-{workers}-{n}"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
    cpu = 0.0
    for proc, path in zip(procs, errors, strict=True):
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if proc.returncode:
            log(f"  !! worker exited {proc.returncode}: {path.read_text()[-2000:]}")
    wall = time.perf_counter() - started
    stamps = sorted(receiver.stamps)
    drain_seconds = stamps[-1] - stamps[0] if len(stamps) > 1 else wall
    windows = Counter(int(t - stamps[0]) for t in stamps) if stamps else Counter()
    mine = Delivery.objects.filter(endpoint=endpoint)
    return Drain(
        workers=workers,
        rows=rows,
        received=sum(receiver.ids.values()),
        duplicates=sum(n - 1 for n in receiver.ids.values() if n > 1),
        delivered=mine.filter(status=DeliveryStatus.DELIVERED).count(),
        attempts=DeliveryAttempt.objects.filter(delivery__endpoint=endpoint).count(),
        drain_seconds=drain_seconds,
        wall_seconds=wall,
        cpu_seconds=cpu,
        # Whole seconds only: the last, partial one would understate the rate.
        windows=[windows[s] for s in range(int(drain_seconds))],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    parser.add_argument("--concurrency", type=int, default=8, help="sends on the wire per worker")
    parser.add_argument("--batch-size", type=int, default=200, help="rows claimed at a time")
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args(argv)
    counts = [int(w) for w in options.workers.split(",")]
    if options.rows < 1 or not counts or min(counts) < 1:
        raise SystemExit("--rows and every --workers count must be positive.")
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    db_url, db_name = side_bench_database(user_url, "drain")
    OUT_DIR.mkdir(exist_ok=True)
    database_create(user_url, db_name, reuse=False)
    env = side_bench_env(db_url, {"DELIVERY_POLL_SECONDS": "0.2"})
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "leadchat.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    command = [
        "deliver_webhooks",
        "--once",
        "--no-close-idle",
        "--concurrency",
        str(options.concurrency),
        "--batch-size",
        str(options.batch_size),
    ]
    results: list[Drain] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        seeded = time.perf_counter()
        session_ids = sessions_seed(options.rows)
        log(f"seeded {len(session_ids):,} sessions in {time.perf_counter() - seeded:.1f} s")
        with FastReceiver() as receiver:
            for workers in counts:
                result = drain(
                    workers=workers,
                    rows=options.rows,
                    receiver=receiver,
                    session_ids=session_ids,
                    env=env,
                    command=command,
                )
                results.append(result)
                cpu_ms = 1000 * result.cpu_seconds / options.rows
                log(
                    f"{workers} worker(s): {result.received:,} received in "
                    f"{result.drain_seconds:.1f} s ({result.rate:.0f}/s; wall "
                    f"{result.wall_seconds:.1f} s), worker CPU {cpu_ms:.2f} ms per delivery, "
                    f"{'exactly once' if result.correct else 'NOT EXACTLY ONCE'}"
                )
    finally:
        connections.close_all()
        if not options.keep_db:
            database_drop(user_url, db_name)
    load = os.getloadavg()
    print()
    print(
        f"{options.rows:,} due deliveries, `deliver_webhooks --once --concurrency "
        f"{options.concurrency} --batch-size {options.batch_size}` x N, loopback receiver "
        f"(load average at the end {load[0]:.1f}):"
    )
    print()
    print(
        "| workers | drain (first to last request) | wall incl. start | deliveries/s | "
        "1-s windows median / best | worker CPU per delivery | exactly once |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        windows = f"{statistics.median(r.windows):.0f} / {max(r.windows)}" if r.windows else "n/a"
        once = (
            "yes"
            if r.correct
            else (
                f"NO ({r.received} received, {r.duplicates} twice, {r.delivered} delivered, "
                f"{r.attempts} attempts)"
            )
        )
        print(
            f"| {r.workers} | {r.drain_seconds:.1f} s | {r.wall_seconds:.1f} s | {r.rate:.0f} | "
            f"{windows} | {1000 * r.cpu_seconds / r.rows:.2f} ms | {once} |"
        )
    return 0 if all(r.correct for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
