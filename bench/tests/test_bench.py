"""The benchmark harness itself: the refusal, the seeder, the floor view, a missing read failing
the run."""

import json
import os
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from bench import run
from bench.seed import BIG_SESSION_MESSAGES, seed_database
from bench.views import FLOOR_REPLY
from sessions_app.leads import lead_key
from sessions_app.models import ChatMessage, ChatSession, Delivery
from sessions_app.selectors import sessions_stats
from sessions_app.tests.factories import ChatSessionFactory
from sessions_app.tests.stats_oracle import raw_stats

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database_url", [None, "sqlite:///var/leadchat.sqlite3"])
def test_bench_refuses_sqlite_with_one_line_and_nonzero_exit(database_url):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--sessions", "10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "needs PostgreSQL" in lines[0]
    assert "Traceback" not in done.stderr


def test_bench_database_is_derived_and_never_the_users_own():
    url, name = run.bench_database_url("postgres://postgres:s3cret@127.0.0.1:5432/leadchat")
    assert name == "leadchat_bench"
    assert url == "postgres://postgres:s3cret@127.0.0.1:5432/leadchat_bench"
    assert "s3cret" not in run.url_redacted(url)


def test_percentile_interpolates_like_numpy():
    values = [10, 20, 30, 40, 50]
    assert run.percentile(values, 50) == 30
    assert run.percentile(values, 95) == pytest.approx(48)
    assert run.percentile([7], 95) == 7


@pytest.mark.postgres
@pytest.mark.django_db
def test_seeder_copies_the_requested_counts_consistently():
    plan, counts = seed_database(sessions=40, messages=700, days=90)

    assert counts == {
        "sessions_app.ChatSession": 40,
        "sessions_app.ChatMessage": 700,
        "sessions_app.Delivery": 40,
    }
    # Historical deliveries only: nothing for a worker to send.
    assert not Delivery.objects.filter(status__in=["pending", "sending"]).exists()
    assert ChatSession.objects.count() == 40
    assert ChatMessage.objects.count() == 700
    # Each session's counter agrees with its transcript.
    assert sum(ChatSession.objects.values_list("message_count", flat=True)) == 700
    big = ChatSession.objects.get(pk=plan.big_session_id)
    assert big.message_count == big.messages.count() == BIG_SESSION_MESSAGES
    # The stats' latency counters agree with the replies' metadata, as message_add keeps them.
    for session in ChatSession.objects.all():
        replies = [m.metadata["latency_ms"] for m in session.messages.filter(role="ai")]
        assert (session.ai_replies_timed, session.ai_latency_ms_total) == (
            len(replies),
            sum(replies),
        )
    # Leads carry their person key, and people come back (the Leads page groups them).
    with_lead = ChatSession.objects.exclude(lead_email="")
    assert with_lead.exists()
    assert all(s.lead_key == lead_key(s.lead_email) for s in with_lead)
    assert not ChatSession.objects.filter(lead_email="").exclude(lead_key="").exists()
    assert with_lead.values("lead_key").distinct().count() < with_lead.count()
    # Columns the seed does not list got the model's defaults (qa_notes is NOT NULL).
    assert ChatSession.objects.filter(qa_notes="", lead_data={}).count() == 40
    # The stats rollups were built after the COPY: the stats answer what the raw rows say.
    today = timezone.now().date()
    stats_range = {"date_from": today - timedelta(days=100), "date_to": today, "tz": UTC}
    assert sessions_stats(**stats_range) == raw_stats(**stats_range)
    assert sessions_stats(**stats_range)["totals"]["sessions"] > 0
    # The id sequence moved past the copied ids: the ORM can insert afterwards.
    assert ChatSessionFactory().pk > max(ChatSession.objects.values_list("pk", flat=True)[1:])


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_floor_view_writes_two_messages_and_updates_the_session(client):
    session = ChatSessionFactory(message_count=0)

    response = client.post(
        f"/bench/floor/{session.public_id}/messages/",
        data=json.dumps({"text": "Hello"}),
        content_type="application/json",
    )

    assert response.status_code == 201
    assert [m["text"] for m in response.json()["messages"]] == ["Hello", FLOOR_REPLY]
    assert list(session.messages.values_list("role", flat=True)) == ["visitor", "ai"]
    session.refresh_from_db()
    assert session.message_count == 2


@pytest.mark.django_db
@pytest.mark.urls("bench.plain_urls")
def test_plain_django_anchor_does_the_floor_writes_with_no_middleware(client, settings):
    from bench import plain_settings

    settings.MIDDLEWARE = plain_settings.MIDDLEWARE
    assert plain_settings.MIDDLEWARE == []
    session = ChatSessionFactory(message_count=0)

    response = client.post(
        f"/bench/floor/{session.public_id}/messages/",
        data=json.dumps({"text": "Hello"}),
        content_type="application/json",
    )

    assert response.status_code == 201
    assert "X-Content-Type-Options" not in response  # SecurityMiddleware did not run
    assert session.messages.count() == 2
    assert client.get("/health").content == b"ok"


@pytest.mark.django_db
@pytest.mark.urls("bench.urls")
def test_floor_view_answers_400_to_bad_json(client):
    session = ChatSessionFactory()
    response = client.post(
        f"/bench/floor/{session.public_id}/messages/", data="nope", content_type="text/plain"
    )
    assert response.status_code == 400
    assert session.messages.count() == 0


@pytest.mark.django_db
def test_reads_measure_live_paths_and_a_url_answering_404_fails_the_bench(
    monkeypatch, admin_role_user, tmp_path, capsys
):
    monkeypatch.setattr(run, "OUT_DIR", tmp_path)
    monkeypatch.setattr(
        run,
        "READS",
        [
            run.ReadEntry("health", "/health", 50, role=None),
            # As after a URL is renamed: the entry still names the old path.
            run.ReadEntry("renamed page", "/renamed-away/{big_session_pk}/", 100),
        ],
    )
    options = run.parse_args(["--sessions", "10", "--read-samples", "3", "--output", "x"])
    bench = run.Bench(options, db_url="", server_env={})
    bench.admin = admin_role_user
    bench.placeholders = {"big_session_pk": 7, "big_session_messages": 500}

    section = bench.reads()

    health = next(line for line in section.lines if line.startswith("| health |"))
    cells = [c.strip() for c in health.strip("|").split("|")]
    assert float(cells[1]) > 0 and float(cells[2]) >= float(cells[1])
    assert cells[3] == "1"  # one query: SELECT 1
    renamed = next(line for line in section.lines if line.startswith("| renamed page |"))
    assert "**failed**: `GET /renamed-away/7/` answers 404" in renamed
    assert section.failed
    assert run.bench_exit_status([run.Section("Other"), section]) == 1
    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr == [
        "bench failed: no figure for some of Reads at scale (see the **failed** lines in the "
        "results)"
    ]


@pytest.mark.django_db
def test_reads_that_all_answer_leave_the_bench_successful(monkeypatch, admin_role_user, tmp_path):
    monkeypatch.setattr(run, "OUT_DIR", tmp_path)
    monkeypatch.setattr(run, "READS", [run.ReadEntry("health", "/health", 50, role=None)])
    options = run.parse_args(["--sessions", "10", "--read-samples", "3", "--output", "x"])
    bench = run.Bench(options, db_url="", server_env={})
    bench.admin = admin_role_user
    bench.placeholders = {"big_session_messages": 500}

    section = bench.reads()

    assert not section.failed
    assert run.bench_exit_status([section]) == 0


def test_a_section_that_cannot_measure_fails_the_bench():
    section = run.Section("Outbox drain").fail("`manage.py deliver_webhooks` does not exist")
    assert section.lines == ["**Failed**: `manage.py deliver_webhooks` does not exist."]
    assert run.bench_exit_status([section]) == 1


@pytest.mark.django_db
def test_reads_flag_query_counts_that_grow_with_the_data(monkeypatch, admin_role_user, tmp_path):
    monkeypatch.setattr(run, "OUT_DIR", tmp_path)
    monkeypatch.setattr(
        run, "READS", [run.ReadEntry("health", "/health", 50, role=None, max_queries=0)]
    )
    # An earlier run at another size counted 0 queries for /health (it takes 1).
    (tmp_path / "read-queries-5000.json").write_text(json.dumps({"health": 0}))
    options = run.parse_args(["--sessions", "10", "--read-samples", "3", "--output", "x"])
    bench = run.Bench(options, db_url="", server_env={})
    bench.admin = admin_role_user
    bench.placeholders = {"big_session_messages": 500}

    lines = bench.reads().lines

    assert "queries at 5,000 sessions" in next(line for line in lines if line.startswith("| read"))
    # Over its budget of 0 as well: flagged.
    assert "Query counts **differ** with the data size for: health." in lines
    assert json.loads((tmp_path / "read-queries-10.json").read_text()) == {"health": 1}


@pytest.mark.django_db
def test_reads_report_a_query_count_over_its_budget(monkeypatch, admin_role_user, tmp_path):
    monkeypatch.setattr(run, "OUT_DIR", tmp_path)
    monkeypatch.setattr(
        run, "READS", [run.ReadEntry("health", "/health", 50, role=None, max_queries=0)]
    )
    options = run.parse_args(["--sessions", "10", "--read-samples", "3", "--output", "x"])
    bench = run.Bench(options, db_url="", server_env={})
    bench.admin = admin_role_user
    bench.placeholders = {"big_session_messages": 500}

    health = next(line for line in bench.reads().lines if line.startswith("| health |"))

    assert "**1 queries > 0**" in health
