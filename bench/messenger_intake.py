"""Messenger on PostgreSQL: webhook intake (signed POSTs into the inbox), then processing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadchat \
        .venv/bin/python -m bench.messenger_intake
    ... --events-per-post 1 --seconds 20 --connections 16
    ... --process-events 2000 --process-workers 1,2     (0 events: intake only)

Like `bench.run`, it never touches the database DATABASE_URL names: it creates
`<that name>_messenger_bench` on the same server, migrates it, serves the product with its
gunicorn.conf.py and production settings, drives `POST /channels/messenger/webhook/` with wrk
(bodies signed beforehand with the app secret, every message id unique, so each request really
inserts), checks the inbox holds every event, and drops the database. Only the intake is
measured: no worker runs (processing is a separate figure). The target is 500 events/s.

Prints one result line per run and the median; `--events-per-post` above 1 measures Meta's
batches (one POST with several events).

Processing is measured separately, after the intake: N pending events from distinct people
(a few messages each), handled by `manage.py deliver_webhooks --once` processes (the scripted
agent, every reply a Send API call to a loopback Graph API that answers at once). It reports
events/s from the first claim to the last reply, and checks every event is done and every
reply went out exactly once.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.run import (
    OUT_DIR,
    ROOT,
    WRK,
    Gunicorn,
    database_create,
    database_drop,
    database_url_check,
    log,
    side_bench_database,
    side_bench_env,
    wrk_json,
)

WRK_SCRIPT = ROOT / "bench" / "wrk" / "messenger.lua"
# Signs the bench's own bodies against a throwaway database: not a credential.
APP_SECRET = secrets.token_hex(16)
PAGE_ID = "100200300400"
TARGET_EVENTS_PER_SECOND = 500
# The loopback Graph API takes any token: not a credential.
PAGE_TOKEN = secrets.token_hex(8)


def bodies_write(path: Path, *, posts: int, events_per_post: int, run: int) -> None:
    now = int(time.time() * 1000)
    with path.open("w") as out:
        for n in range(posts):
            events = [
                {
                    "sender": {"id": f"{7_000_000 + (n * events_per_post + i) % 5000}"},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": now,
                    "message": {
                        "mid": f"m_bench_{run}_{n}_{i}",
                        "text": "Hi, we are a team of 40 and would like a quote.",
                    },
                }
                for i in range(events_per_post)
            ]
            body = json.dumps(
                {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": events}]},
                separators=(",", ":"),
            )
            signature = hmac.new(APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            out.write(f"sha256={signature}\t{body}\n")


class GraphApi:
    """A loopback Send API answering 200 at once, in one send (see bench.run.WebhookReceiver
    for why), counting each reply's text per recipient."""

    def __init__(self) -> None:
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        graph = self
        self.replies: list[tuple[str, str]] = []
        self.last_at = 0.0
        self._lock = threading.Lock()
        answer = b'{"recipient_id":"1","message_id":"m_bench"}'
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                text = (body.get("message") or {}).get("text")
                if text is not None:
                    with graph._lock:
                        graph.replies.append((body["recipient"]["id"], text))
                        graph.last_at = time.perf_counter()
                self.wfile.write(head + answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v23.0"

    def __enter__(self) -> GraphApi:
        import threading

        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def processing_run(*, events: int, workers: int, env: dict[str, str], round_no: int) -> float:
    """`events` pending events (4 per person) handled by `workers` worker processes; events/s."""
    from widget.channels.messenger.intake import inbox_events_store
    from widget.channels.messenger.models import InboxStatus, MessengerInboxEvent

    # The intake runs left their events pending: out of the way, so only this round's count.
    MessengerInboxEvent.objects.filter(status=InboxStatus.PENDING).update(
        status=InboxStatus.SKIPPED
    )
    now = int(time.time() * 1000)
    texts = ["Hi there", "We need a quote for 40 people", "Ana Lima", "ana@example.com"]
    items = [
        {
            "sender": {"id": f"{8_000_000 + round_no * 100_000 + n // len(texts)}"},
            "recipient": {"id": PAGE_ID},
            "timestamp": now + n,
            "message": {"mid": f"m_proc_{round_no}_{n}", "text": texts[n % len(texts)]},
        }
        for n in range(events)
    ]
    for start in range(0, events, 500):
        inbox_events_store(
            data={
                "object": "page",
                "entry": [{"id": PAGE_ID, "time": now, "messaging": items[start : start + 500]}],
            }
        )
    with GraphApi() as graph:
        worker_env = {**env, "MESSENGER_GRAPH_API_URL": graph.url}
        started = time.perf_counter()
        # `--once` ends a worker when nothing is due to it; a person's next event waits for the
        # previous one, so a worker can stop while another still holds work: go on until none
        # is open.
        passes = 0
        while MessengerInboxEvent.objects.filter(status__in=["pending", "processing"]).exists():
            passes += 1
            procs = [
                subprocess.Popen(
                    [sys.executable, "manage.py", "deliver_webhooks", "--once"],
                    cwd=ROOT,
                    env=worker_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(workers)
            ]
            for proc in procs:
                proc.wait()
            if passes > 20:
                raise RuntimeError("the inbox did not drain in 20 passes of the workers")
        seconds = (graph.last_at or time.perf_counter()) - started
        handled = MessengerInboxEvent.objects.filter(
            mid__startswith=f"m_proc_{round_no}_", status=InboxStatus.DONE
        ).count()
        replies = len(graph.replies)
        twice = len(graph.replies) - len(set(graph.replies))
    rate = handled / seconds
    log(
        f"processing, {workers} worker(s): {handled} / {events} events done in {seconds:.1f} s "
        f"({rate:.0f} events/s), {replies} Send API replies, {twice} repeated text(s) to one "
        f"person, {passes} pass(es)"
    )
    if handled < events:
        log(f"  !! only {handled} of {events} events done")
    return rate


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes so far (what a run cost the
    server, whatever else the machine was doing: the figure that stays put on a shared
    machine). A process that is gone is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings. gunicorn replaces a worker after `max_requests`: a
    worker born during the run counts from zero (the one it replaced is gone, its share of the
    run unread, so the figure is a little low then, never negative)."""
    return sum(now - before.get(pid, 0.0) for pid, now in after.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-post", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--process-events", type=int, default=2000, help="0 measures the intake only"
    )
    parser.add_argument(
        "--process-workers",
        default="1,2",
        help="comma-separated worker counts, one processing round each",
    )
    options = parser.parse_args(argv)
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    if not Path(WRK).exists():
        raise SystemExit(f"needs wrk at {WRK}: apt-get install wrk (or set WRK=...)")
    db_url, db_name = side_bench_database(user_url, "messenger_bench")
    OUT_DIR.mkdir(exist_ok=True)
    database_create(user_url, db_name, reuse=False)
    env = side_bench_env(
        db_url,
        {
            "MESSENGER_APP_SECRET": APP_SECRET,
            "MESSENGER_REQUESTS_PER_IP_PER_MINUTE": "100000000",
        },
    )
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "leadchat.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from widget.channels.messenger.models import MessengerInboxEvent
    from widget.models import Site

    rates: list[float] = []
    try:
        call_command("migrate", verbosity=0, interactive=False)
        Site.objects.create(
            name="Bench page", messenger_page_id=PAGE_ID, messenger_page_token=PAGE_TOKEN
        )
        with Gunicorn("messenger", "leadchat.settings", env) as server:
            for run in range(options.runs):
                bodies = OUT_DIR / f"messenger-bodies-{run}.txt"
                # More bodies than the run can send (measured ~1,000 POST/s at most here).
                posts = max(2000, options.seconds * 3000 // max(1, options.events_per_post))
                bodies_write(bodies, posts=posts, events_per_post=options.events_per_post, run=run)
                before = MessengerInboxEvent.objects.count()
                cpu_before = cpu_seconds(server.worker_pids())
                result = wrk_json(
                    server.url,
                    WRK_SCRIPT,
                    [str(bodies)],
                    seconds=options.seconds,
                    connections=options.connections,
                )
                time.sleep(1)  # requests wrk gave up waiting for may still be committing
                cpu_after = cpu_seconds(server.worker_pids())
                cpu_ms = 1000 * cpu_spent(cpu_before, cpu_after) / max(1, result["requests"])
                stored = MessengerInboxEvent.objects.count() - before
                seconds = result["duration_us"] / 1e6
                errors = sum(v for k, v in result.items() if k.startswith("errors_"))
                sent_events = result["requests"] * options.events_per_post
                rate = stored / seconds
                rates.append(rate)
                log(
                    f"run {run + 1}: {result['requests']} POSTs x {options.events_per_post} "
                    f"event(s) in {seconds:.1f} s -> {stored} stored ({rate:.0f} events/s, "
                    f"{result['requests'] / seconds:.0f} POST/s), p50 "
                    f"{result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, "
                    f"errors {errors}, wrapped {result['wrapped']}; web workers' CPU "
                    f"{cpu_ms:.2f} ms per POST"
                )
                if result["wrapped"] == 0 and stored < sent_events:
                    log(f"  !! {sent_events} events answered but only {stored} stored")
                bodies.unlink()
            # What this machine serves at all right now (its load is shared): a plain GET of
            # /health on the same server, as a yardstick for the figures above.
            floor = subprocess.run(
                [
                    WRK,
                    "-t2",
                    f"-c{options.connections}",
                    f"-d{options.seconds}s",
                    server.url + "/health",
                ],
                capture_output=True,
                text=True,
                timeout=options.seconds + 60,
                check=False,
            )
            found = re.search(r"Requests/sec:\s+(\S+)", floor.stdout)
            log(f"yardstick: GET /health {found.group(1) if found else '?'} requests/s")
        for round_no, workers in enumerate(
            int(w) for w in options.process_workers.split(",") if options.process_events
        ):
            processing_run(
                events=options.process_events, workers=workers, env=env, round_no=round_no
            )
    finally:
        connections.close_all()
        if not options.keep_db:
            database_drop(user_url, db_name)
    median = statistics.median(rates) if rates else 0.0
    verdict = "met" if median >= TARGET_EVENTS_PER_SECOND else "MISSED"
    log(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    log(
        f"Messenger intake: median {median:.0f} events/s over {len(rates)} run(s) "
        f"(target {TARGET_EVENTS_PER_SECOND}: {verdict})"
    )
    return 0 if rates else 1


if __name__ == "__main__":
    raise SystemExit(main())
