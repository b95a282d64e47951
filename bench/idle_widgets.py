"""Open, idle widgets polling for new messages: the CPU they add and /health's p95 meanwhile.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadchat \
        .venv/bin/python -m bench.idle_widgets
    ... --widgets 200 --seconds 30 --poll-ms 2000

Like `bench.run`, it never touches the database DATABASE_URL names: it creates
`<that name>_idle_widgets_bench` on the same server, migrates it, serves the product with its
gunicorn.conf.py and production settings, starts `--widgets` real widget sessions through the
public API, then measures two phases of `--seconds` each:
1. nobody polls: the server's own idle CPU, and /health latency (one probe every 100 ms);
2. every widget polls `GET /api/widget/sessions/{id}/messages/?after=<cursor>` every
   `--poll-ms` (what static/widget/widget.js does while the chat is open; each widget on its
   own keep-alive connection, with its Origin and visitor token, so every poll passes the same
   checks as in production), nobody writes, and the same /health probe runs.
The CPU figure is the gunicorn master's and workers' user + system time (workers that
max_requests recycled included), as a share of the machine's cores: phase 2 minus phase 1.
Targets (issue 14): under 10% CPU added, /health p95 <= 50 ms with the widgets polling.
The pollers run in this process and are not counted; on a machine loaded by others the figures
move with that load (the load average is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.run import (
    OUT_DIR,
    Gunicorn,
    database_create,
    database_drop,
    database_url_check,
    log,
    percentile,
    side_bench_database,
    side_bench_env,
)
from bench.run import http as http_call

ORIGIN = "https://bench-landing.example.com"
SITE_KEY = "bench-idle-widgets"
TARGET_CPU_PERCENT = 10.0
TARGET_HEALTH_P95_MS = 50.0
HEALTH_PROBE_EVERY_S = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int, *, children: bool = False) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")": state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based).
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used


def server_cpu_seconds(server: Gunicorn) -> float:
    """CPU time of the master, its live workers, and the workers it has reaped (recycled)."""
    assert server.process is not None
    total = _ticks(server.process.pid, children=True)
    for pid in server.worker_pids():
        # A worker that exited between the listing and the read: its time is in cutime now.
        with contextlib.suppress(OSError):
            total += _ticks(pid)
    return total / CLOCK_TICKS


@dataclass
class Widget:
    session_id: str
    token: str
    cursor: int


@dataclass
class PollStats:
    polls: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def widgets_start(url: str, count: int) -> list[Widget]:
    widgets = []
    for _ in range(count):
        started = http_call(
            "POST",
            f"{url}/api/widget/sessions/",
            json_body={"site_key": SITE_KEY, "page_url": f"{ORIGIN}/pricing"},
            headers={"Origin": ORIGIN},
        )
        if started.status != 201:
            raise RuntimeError(f"session start answered {started.status}: {started.body[:200]!r}")
        body = json.loads(started.body)
        cursor = max((m["id"] for m in body["messages"]), default=0)
        widgets.append(Widget(body["session_id"], body["visitor_token"], cursor))
    return widgets


def poll_loop(port: int, widget: Widget, *, poll_s: float, until: float, stats: PollStats) -> None:
    """One open widget: poll every `poll_s` on its own keep-alive connection until `until`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Origin": ORIGIN, "X-Visitor-Token": widget.token, "Accept": "application/json"}
    time.sleep(random.uniform(0, poll_s))  # open widgets do not poll in step
    next_at = time.monotonic()
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            path = f"/api/widget/sessions/{widget.session_id}/messages/?after={widget.cursor}"
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                with stats.lock:
                    stats.errors.append(f"{response.status} {body[:120]!r}")
            else:
                widget.cursor = json.loads(body)["cursor"]
        except (OSError, http.client.HTTPException) as exc:
            with stats.lock:
                stats.errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with stats.lock:
            stats.polls += 1
            stats.seconds.append(time.perf_counter() - started)
        next_at += poll_s
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()


def health_probe(port: int, *, until: float) -> list[float]:
    """/health every HEALTH_PROBE_EVERY_S on one keep-alive connection: latencies in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    while time.monotonic() < until:
        started = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(HEALTH_PROBE_EVERY_S)
    connection.close()
    return latencies


def measure(
    server: Gunicorn, *, seconds: float, widgets: Sequence[Widget], poll_s: float
) -> tuple[float, list[float], PollStats]:
    """One phase: (CPU seconds the server used, /health latencies, the polls' outcome)."""
    port = server.port
    stats = PollStats()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=poll_loop,
            args=(port, widget),
            kwargs={"poll_s": poll_s, "until": until, "stats": stats},
            daemon=True,
        )
        for widget in widgets
    ]
    cpu_before = server_cpu_seconds(server)
    for thread in threads:
        thread.start()
    latencies = health_probe(port, until=until)
    for thread in threads:
        thread.join(timeout=30)
    cpu_used = server_cpu_seconds(server) - cpu_before
    return cpu_used, latencies, stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widgets", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--poll-ms", type=int, default=2000, help="as LIVE_POLL_MS (default)")
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args(argv)
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    db_url, db_name = side_bench_database(user_url, "idle_widgets_bench")
    OUT_DIR.mkdir(exist_ok=True)
    database_create(user_url, db_name, reuse=False)
    env = side_bench_env(
        db_url,
        {
            # Every bench widget polls from 127.0.0.1: one IP standing for many visitors.
            "WIDGET_POLLS_PER_IP_PER_MINUTE": "100000000",
            "LIVE_POLL_MS": str(min(2500, max(500, options.poll_ms))),
        },
    )
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "leadchat.settings"})
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from widget.models import Site

    cores = os.cpu_count() or 1
    poll_s = options.poll_ms / 1000
    ok = False
    try:
        call_command("migrate", verbosity=0, interactive=False)
        Site.objects.create(name="Bench landing", public_key=SITE_KEY, allowed_origins=[ORIGIN])
        connections.close_all()
        with Gunicorn("idle-widgets", "leadchat.settings", env) as server:
            widgets = widgets_start(server.url, options.widgets)
            log(f"{len(widgets)} widget sessions started; phase 1: nobody polls")
            idle_cpu, idle_health, _ = measure(
                server, seconds=options.seconds, widgets=[], poll_s=poll_s
            )
            log(f"phase 2: {len(widgets)} widgets poll every {options.poll_ms} ms")
            busy_cpu, busy_health, stats = measure(
                server, seconds=options.seconds, widgets=widgets, poll_s=poll_s
            )
        added = max(0.0, busy_cpu - idle_cpu) / options.seconds * 100 / cores
        p95_idle = percentile(idle_health, 95)
        p95 = percentile(busy_health, 95)
        rate = stats.polls / options.seconds
        poll_p95 = percentile(stats.seconds, 95) * 1000 if stats.seconds else float("nan")
        log(
            f"polls: {stats.polls} in {options.seconds} s ({rate:.0f}/s), p95 {poll_p95:.1f} ms, "
            f"errors {len(stats.errors)}" + (f" (first: {stats.errors[0]})" if stats.errors else "")
        )
        log(
            f"server CPU: idle {idle_cpu / options.seconds * 100 / cores:.1f}%, polling "
            f"{busy_cpu / options.seconds * 100 / cores:.1f}% of {cores} core(s)"
        )
        log(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        cpu_verdict = "met" if added < TARGET_CPU_PERCENT else "MISSED"
        p95_verdict = "met" if p95 <= TARGET_HEALTH_P95_MS else "MISSED"
        log(
            f"{len(widgets)} idle widgets: +{added:.1f}% CPU (target < {TARGET_CPU_PERCENT:.0f}%: "
            f"{cpu_verdict}); /health p95 {p95:.1f} ms with them, {p95_idle:.1f} ms without "
            f"(target <= {TARGET_HEALTH_P95_MS:.0f} ms: {p95_verdict})"
        )
        ok = not stats.errors
    finally:
        connections.close_all()
        if not options.keep_db:
            database_drop(user_url, db_name)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
