"""Scale-out, measured: one web process against two, and one delivery worker against two.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadchat .venv/bin/python -m bench.scaleout
    ... --seconds 10 --connections 16 --runs 3 --leads 200 --redis redis://127.0.0.1:6379/7

A deployment grows by running the same web server on a second port or host, behind the load
balancer, with one shared Redis for the cache (the widget's rate limits live there) and more
delivery workers. This runs exactly that on loopback, on its own database
(`<DATABASE_URL's name>_scaleout`, dropped afterwards) and its own Redis key prefix:

1. **Widget round trip**: `POST /api/widget/sessions/<id>/messages/` (the scripted agent) driven
   by wrk against one gunicorn process with one worker, then against two such processes on two
   ports at once (half the connections each, as a balancer would spread them), alternating.
   Reports requests/s, latency and the CPU seconds each part used per 1,000 messages: the web
   processes, this database's PostgreSQL backends, Redis and wrk.
2. **Lead to delivered**: N conversations that each end in a lead, spread over both web
   processes, with one and then two `deliver_webhooks` workers running; the loopback receiver
   stamps each `lead.captured` webhook. Reports the latency from the lead's answer to the
   webhook's arrival (p50, p95) and checks each lead arrived exactly once.
3. **One rate limit across both**: with WIDGET_SESSIONS_PER_IP_PER_HOUR=20, 40 session starts
   alternate between the two processes: exactly 20 must be refused (429).

The machine's load average is printed with the figures: on a shared machine they move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.messenger_intake import cpu_seconds, cpu_spent
from bench.run import (
    OUT_DIR,
    ROOT,
    WIDGET_API,
    WRK,
    Gunicorn,
    WrkRun,
    database_create,
    database_drop,
    database_url_check,
    http,
    log,
    percentile,
    side_bench_database,
    side_bench_env,
    wrk_run,
)

SESSIONS_PER_CONNECTION = 4
RATE_LIMIT = 20


class LeadReceiver:
    """A loopback webhook receiver that stamps each `lead.captured` by session id (one send
    per answer and TCP_NODELAY, as bench.run.WebhookReceiver, for the same reason)."""

    def __init__(self) -> None:
        import socket
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
            b'\r\n{"ok":true}'
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.perf_counter()
                try:
                    session_id = json.loads(body)["data"]["session"]["id"]
                except (ValueError, KeyError, TypeError):
                    session_id = "?"
                with receiver._lock:
                    receiver.arrivals.setdefault(session_id, []).append(at)
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/leads"

    def __enter__(self) -> LeadReceiver:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def start_session(server: Gunicorn, site_key: str, n: int) -> tuple[int, dict[str, Any]]:
    result = http(
        "POST",
        f"{server.url}{WIDGET_API.start_path}",
        json_body={"site_key": site_key, "page_url": f"{WIDGET_API.origin}/scale?n={n}"},
        headers={"Origin": WIDGET_API.origin, "Accept": "application/json"},
    )
    if result.status != 201:
        return result.status, {"error": result.body[:300].decode(errors="replace")}
    return result.status, json.loads(result.body)


def say(server: Gunicorn, session_id: str, token: str, text: str) -> int:
    return http(
        "POST",
        f"{server.url}{WIDGET_API.message_path % session_id}",
        json_body={"text": text},
        headers={
            "Origin": WIDGET_API.origin,
            "Accept": "application/json",
            "X-Visitor-Token": token,
        },
    ).status


def sessions_file(server: Gunicorn, site_key: str, count: int, name: str) -> Path:
    lines = []
    for n in range(count):
        status, data = start_session(server, site_key, n)
        if status != 201:
            raise RuntimeError(f"session start answered {status}")
        lines.append(f"{data['session_id']} {data['visitor_token']}\n")
    path = OUT_DIR / f"scaleout-{name}.txt"
    path.write_text("".join(lines))
    return path


def postgres_backends(db_name: str) -> list[int]:
    """This database's PostgreSQL backends (their titles name the database)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {db_name} " in title:
            pids.append(int(proc.name))
    return pids


def redis_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "redis-server":
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cpu_meter(servers: Sequence[Gunicorn], db_name: str) -> Iterator[dict[str, float]]:
    """CPU seconds used meanwhile by the web processes, the database, Redis and wrk."""

    def web() -> list[int]:
        return [pid for s in servers if s.process for pid in [s.process.pid, *s.worker_pids()]]

    parts = {
        "web": web,
        "postgres": lambda: postgres_backends(db_name),
        "redis": redis_pids,
    }
    before = {name: cpu_seconds(pids()) for name, pids in parts.items()}
    wrk_before = children_cpu()
    spent: dict[str, float] = {}
    yield spent
    for name, pids in parts.items():
        spent[name] = cpu_spent(before[name], cpu_seconds(pids()))
    spent["wrk"] = children_cpu() - wrk_before


def roundtrip(
    one: Gunicorn, two: tuple[Gunicorn, Gunicorn], site_key: str, db_name: str, options: Any
) -> list[str]:
    count = options.connections * SESSIONS_PER_CONNECTION
    whole = sessions_file(one, site_key, count, "one")
    lines = whole.read_text().splitlines(keepends=True)
    halves = []
    for i in (0, 1):
        half = OUT_DIR / f"scaleout-half-{i}.txt"
        half.write_text("".join(lines[i::2]))
        halves.append(half)
    template = WIDGET_API.message_path

    def one_process() -> tuple[list[WrkRun], dict[str, float]]:
        with cpu_meter([one], db_name) as spent:
            run = wrk_run(
                one.url, whole, template, seconds=options.seconds, connections=options.connections
            )
        return [run], spent

    def two_processes() -> tuple[list[WrkRun], dict[str, float]]:
        runs: list[WrkRun] = []
        with cpu_meter(list(two), db_name) as spent, ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    wrk_run,
                    server.url,
                    half,
                    template,
                    seconds=options.seconds,
                    connections=options.connections // 2,
                )
                for server, half in zip(two, halves, strict=True)
            ]
            runs = [f.result() for f in futures]
        return runs, spent

    configs = {"1 web process": one_process, "2 web processes": two_processes}
    for measure in configs.values():  # warm-up: connections, caches, the first requests
        wrk_run(one.url, whole, template, seconds=2, connections=4)
        measure()
    results: dict[str, list[tuple[float, float, float, dict[str, float], int]]] = {
        name: [] for name in configs
    }
    for n in range(options.runs):
        for name, measure in configs.items():
            runs, spent = measure()
            requests = sum(r.requests for r in runs)
            seconds = max(r.seconds for r in runs)
            errors = sum(r.errors + r.non_2xx for r in runs)
            rps = requests / seconds
            p50 = max(r.p50_ms for r in runs)
            p99 = max(r.p99_ms for r in runs)
            per_k = {part: 1000 * cpu / max(1, requests) for part, cpu in spent.items()}
            results[name].append((rps, p50, p99, per_k, errors))
            log(
                f"  run {n + 1} {name}: {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                f"errors {errors}; CPU s per 1,000: "
                + ", ".join(f"{part} {value:.2f}" for part, value in per_k.items())
            )
    out = [
        "| web processes | requests/s | p50 ms | p99 ms | CPU s per 1,000 messages: "
        "web / PostgreSQL / Redis / wrk | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    medians = {}
    for name, rows in results.items():
        medians[name] = statistics.median(r[0] for r in rows)
        cpu = " / ".join(
            f"{statistics.median(r[3][part] for r in rows):.2f}"
            for part in ("web", "postgres", "redis", "wrk")
        )
        out.append(
            f"| {name} | {medians[name]:.0f} | {statistics.median(r[1] for r in rows):.1f} | "
            f"{statistics.median(r[2] for r in rows):.1f} | {cpu} | {sum(r[4] for r in rows)} |"
        )
    out.append(
        f"\n**2 web processes / 1: {medians['2 web processes'] / medians['1 web process']:.2f}** "
        f"(ratio of medians over {options.runs} runs)."
    )
    return out


def lead_latency(
    two: tuple[Gunicorn, Gunicorn], site_key: str, env: dict[str, str], options: Any
) -> list[str]:

    from sessions_app.models import WebhookEndpoint

    out = [
        "| delivery workers | leads | lead -> delivered p50 ms | p95 ms | max ms | "
        "delivered twice | missing |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with LeadReceiver() as receiver:
        WebhookEndpoint.objects.create(name="Scale-out", url=receiver.url, events=["lead.captured"])
        for workers in (1, 2):
            receiver.arrivals.clear()
            out.append(lead_round(two, site_key, env, options, receiver, workers))
    return out


def lead_round(
    two: tuple[Gunicorn, Gunicorn],
    site_key: str,
    env: dict[str, str],
    options: Any,
    receiver: LeadReceiver,
    workers: int,
) -> str:
    import subprocess

    from sessions_app.delivery.models import WorkerHeartbeat

    with ExitStack() as stack:
        procs = []
        for w in range(workers):
            log_file = (OUT_DIR / f"scaleout-worker-{w}.log").open("wb")
            stack.callback(log_file.close)
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "deliver_webhooks", "--name", f"scale-{w}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
            procs.append(proc)
        # Measured from a worker that is up: its start (Django, system checks) is not latency.
        deadline = time.monotonic() + 120
        while WorkerHeartbeat.objects.filter(pid__in=[p.pid for p in procs]).count() < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the delivery workers did not start; see bench/out/")
            time.sleep(0.2)
        answered: dict[str, float] = {}

        def converse(n: int) -> None:
            server = two[n % 2]
            status, data = start_session(server, site_key, n)
            if status != 201:
                return
            sid = data["session_id"]
            text = f"I'm Ana Silva, ana.{workers}.{n}@example.com"
            if say(server, sid, data["visitor_token"], text) == 201:
                answered[sid] = time.perf_counter()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(converse, range(options.leads)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(sid in receiver.arrivals for sid in answered):
                break
            time.sleep(0.2)
        time.sleep(2)  # a second send of the same lead would arrive now
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    arrivals = receiver.arrivals
    latencies = [1000 * (arrivals[sid][0] - at) for sid, at in answered.items() if sid in arrivals]
    twice = sum(1 for sid in answered if len(arrivals.get(sid, [])) > 1)
    missing = sum(1 for sid in answered if sid not in arrivals)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    log(
        f"  {workers} worker(s): {len(answered)} leads, p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"twice {twice}, missing {missing}"
    )
    return (
        f"| {workers} | {len(answered)} | {p50:.0f} | {p95:.0f} | "
        f"{max(latencies, default=0):.0f} | {twice} | {missing} |"
    )


def shared_limit(env: dict[str, str], site_key: str) -> list[str]:
    limited = {
        **env,
        "WIDGET_SESSIONS_PER_IP_PER_HOUR": str(RATE_LIMIT),
        "CACHE_URL": env["CACHE_URL"] + "-limit",
    }
    with (
        Gunicorn("scale-limit-a", "leadchat.settings", limited) as a,
        Gunicorn("scale-limit-b", "leadchat.settings", limited) as b,
    ):
        answers = [start_session((a, b)[n % 2], site_key, n) for n in range(2 * RATE_LIMIT)]
    statuses = [status for status, _ in answers]
    created, refused = statuses.count(201), statuses.count(429)
    other = [(status, data) for status, data in answers if status not in (201, 429)]
    if other or created != RATE_LIMIT:
        log(f"  unexpected answers: {statuses}; first refusal: {answers[-1][1]}")
    verdict = (
        "one limit across both"
        if (created, refused) == (RATE_LIMIT, RATE_LIMIT)
        else ("**NOT shared**")
    )
    log(f"  shared limit: {created} created, {refused} refused: {verdict}")
    return [
        f"WIDGET_SESSIONS_PER_IP_PER_HOUR={RATE_LIMIT}, {2 * RATE_LIMIT} session starts "
        f"alternating between two processes: {created} created, {refused} refused (429): "
        f"{verdict}."
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--parts", default="roundtrip,leads,limit", help="comma-separated: roundtrip,leads,limit"
    )
    options = parser.parse_args(argv)
    parts = {p.strip() for p in options.parts.split(",") if p.strip()}
    if not parts or parts - {"roundtrip", "leads", "limit"}:
        parser.error("--parts takes roundtrip, leads and limit, comma-separated")
    if options.runs < 1 or options.connections < 2 or options.leads < 1:
        parser.error("need --runs >= 1, --connections >= 2 and --leads >= 1")
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    if not Path(WRK).exists():
        raise SystemExit(f"needs wrk at {WRK}: apt-get install wrk (or set WRK=...)")
    db_url, db_name = side_bench_database(user_url, "scaleout")
    OUT_DIR.mkdir(exist_ok=True)
    database_create(user_url, db_name, reuse=False)
    # Its own key prefix: never another run's counters, never anyone else's keys, no flush.
    prefix = f"leadchat-scaleout-{secrets.token_hex(4)}"
    env = side_bench_env(
        db_url,
        {
            "CACHE_URL": f"{options.redis}?key_prefix={prefix}",
            "WEB_CONCURRENCY": "1",
            "LEAD_EMAIL_DNS_CHECK": "false",  # no network here; the leads' domain is made up
            "DELIVERY_POLL_SECONDS": "0.2",
        },
    )
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "leadchat.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from widget.models import Site

    sections: list[str] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        site = Site.objects.create(
            name="Scale-out", allowed_origins=[WIDGET_API.origin], agent_backend="scripted"
        )
        with (
            Gunicorn("scale-1", "leadchat.settings", env) as first,
            Gunicorn("scale-2", "leadchat.settings", env) as second,
        ):
            if "roundtrip" in parts:
                log("round trip ...")
                sections += ["### Widget round trip", "", *roundtrip(
                    first, (first, second), site.public_key, db_name, options
                ), ""]  # fmt: skip
            if "leads" in parts:
                log("lead to delivered ...")
                sections += [
                    "### Lead to delivered",
                    "",
                    *lead_latency((first, second), site.public_key, env, options),
                    "",
                ]
        if "limit" in parts:
            log("shared rate limit ...")
            sections += ["### One rate limit across both", "", *shared_limit(env, site.public_key)]
    finally:
        connections.close_all()
        if not options.keep_db:
            database_drop(user_url, db_name)
    print()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n".join(sections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
