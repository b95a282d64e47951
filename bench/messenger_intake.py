"""Messenger webhook intake on PostgreSQL: signed POSTs stored in the inbox, nothing else.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/leadchat \
        .venv/bin/python -m bench.messenger_intake
    ... --events-per-post 1 --seconds 20 --connections 16

Like `bench.run`, it never touches the database DATABASE_URL names: it creates
`<that name>_messenger_bench` on the same server, migrates it, serves the product with its
gunicorn.conf.py and production settings, drives `POST /channels/messenger/webhook/` with wrk
(bodies signed beforehand with the app secret, every message id unique, so each request really
inserts), checks the inbox holds every event, and drops the database. Only the intake is
measured: no worker runs (processing is a separate figure). The target is 500 events/s.

Prints one result line per run and the median; `--events-per-post` above 1 measures Meta's
batches (one POST with several events).
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
from urllib.parse import urlsplit, urlunsplit

from bench.run import (
    OUT_DIR,
    PRODUCT_ENV,
    ROOT,
    WRK,
    Gunicorn,
    database_create,
    database_drop,
    database_url_check,
    log,
    wrk_json,
)

WRK_SCRIPT = ROOT / "bench" / "wrk" / "messenger.lua"
# Signs the bench's own bodies against a throwaway database: not a credential.
APP_SECRET = secrets.token_hex(16)
PAGE_ID = "100200300400"
TARGET_EVENTS_PER_SECOND = 500


def bench_database(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'leadchat'}_messenger_bench"
    return urlunsplit(parts._replace(path=f"/{name}")), name


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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (what a run cost the server, whatever
    else the machine was doing: the figure that stays put on a shared machine)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-post", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    options = parser.parse_args(argv)
    user_url = database_url_check(os.environ.get("DATABASE_URL", ""))
    if not Path(WRK).exists():
        raise SystemExit(f"needs wrk at {WRK}: apt-get install wrk (or set WRK=...)")
    db_url, db_name = bench_database(user_url)
    OUT_DIR.mkdir(exist_ok=True)
    database_create(user_url, db_name, reuse=False)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LEADCHAT_VAR_DIR": str(OUT_DIR / "var"),
        "LOG_LEVEL": "ERROR",
        "MESSENGER_APP_SECRET": APP_SECRET,
        "MESSENGER_REQUESTS_PER_IP_PER_MINUTE": "100000000",
        **PRODUCT_ENV,
    }
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
        Site.objects.create(name="Bench page", messenger_page_id=PAGE_ID)
        with Gunicorn("messenger", "leadchat.settings", env) as server:
            for run in range(options.runs):
                bodies = OUT_DIR / f"messenger-bodies-{run}.txt"
                # More bodies than the run can send (measured ~1,000 POST/s at most here).
                posts = max(2000, options.seconds * 3000 // max(1, options.events_per_post))
                bodies_write(bodies, posts=posts, events_per_post=options.events_per_post, run=run)
                before = MessengerInboxEvent.objects.count()
                pids = server.worker_pids()
                cpu_before = cpu_seconds(pids)
                result = wrk_json(
                    server.url,
                    WRK_SCRIPT,
                    [str(bodies)],
                    seconds=options.seconds,
                    connections=options.connections,
                )
                time.sleep(1)  # requests wrk gave up waiting for may still be committing
                cpu_ms = 1000 * (cpu_seconds(pids) - cpu_before) / max(1, result["requests"])
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
