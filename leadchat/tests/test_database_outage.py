"""While PostgreSQL is away, API clients get a JSON 503 with Retry-After, never an HTML 500.

Two real outages: a process whose database port has nothing listening (runs on every CI leg),
and a gunicorn serving from a PostgreSQL cluster of the test's own that the test stops and
starts again (PostgreSQL CI leg).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from leadchat.testing import free_port
from leadchat.tests.test_health import _run_in_subprocess, production_env

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django, json; django.setup()
from django.test import Client
c = Client()
out = {}
r = c.post("/api/widget/sessions/", {"site_key": "any"}, content_type="application/json",
           HTTP_ORIGIN="https://landing.example.com")
out["widget"] = [r.status_code, r["Content-Type"], r.get("Retry-After"), r.content.decode()]
r = c.get("/api/sessions/", HTTP_AUTHORIZATION="Token " + "0123456789abcdef" * 4)
out["staff"] = [r.status_code, r["Content-Type"], r.get("Retry-After"), r.content.decode()]
c.cookies["sessionid"] = "x" * 32
r = c.get("/admin/")
out["page"] = [r.status_code, r["Content-Type"], r.get("Retry-After"), r.content.decode()]
print(json.dumps(out))
"""


def test_api_paths_answer_json_503_with_retry_after_when_the_database_is_unreachable():
    result = _run_in_subprocess(
        PROBE,
        DEBUG="false",
        SECRET_KEY="x" * 50,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for api in ("widget", "staff"):
        status, content_type, retry_after, body = out[api]
        assert (status, content_type, retry_after) == (503, "application/json", "5"), out[api]
        assert json.loads(body) == {
            "error": "The service is briefly unavailable. Please try again in a few seconds.",
            "code": "database_unavailable",
        }
    status, content_type, retry_after, body = out["page"]
    assert (status, retry_after) == (503, "5")
    assert content_type.startswith("text/plain")
    assert "Traceback" not in body


# --- A real PostgreSQL cluster, stopped and started under a running gunicorn ---------------------


def _pg(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def own_postgres_cluster():
    """A throwaway PostgreSQL cluster on a free port: (port, stop, start)."""
    if not shutil.which("pg_createcluster"):
        pytest.skip("pg_createcluster (postgresql-common) is not installed")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    # The name is unique per xdist worker and per run (clusters are machine-wide, shared by every
    # worktree); the port is one the kernel reports free now, not a fixed one two workers share.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"leadchat_outage_{worker}_{uuid.uuid4().hex[:8]}"
    port = free_port()
    _pg("pg_createcluster", version, name, "-p", str(port), "--", "--auth=trust")
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    _pg(*ctl, "start")
    try:
        yield port, lambda: _pg(*ctl, "stop", "-m", "fast"), lambda: _pg(*ctl, "start")
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", version, name], capture_output=True, timeout=120
        )


@pytest.mark.postgres
def test_gunicorn_answers_json_503_while_postgres_is_stopped_and_recovers(own_postgres_cluster):
    port, stop_db, start_db = own_postgres_cluster
    app_port = free_port()
    env = production_env(
        DEBUG="false",
        SECRET_KEY="o" * 50,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/postgres",
        GUNICORN_BIND=f"127.0.0.1:{app_port}",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
        LOG_LEVEL="ERROR",
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr
    seed = (
        "import django; django.setup();"
        "from widget.models import Site;"
        "Site.objects.create(name='Outage', public_key='outage',"
        " allowed_origins=['https://landing.example.com'])"
    )
    subprocess.run([sys.executable, "-c", seed], cwd=ROOT, env=env, check=True, timeout=60)
    gunicorn = ["-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket", "leadchat.wsgi"]
    server = subprocess.Popen(
        [sys.executable, *gunicorn],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{app_port}"
    start_body = {"site_key": "outage", "page_url": "https://landing.example.com/"}
    origin = {"Origin": "https://landing.example.com"}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        status, _, body = http("POST", f"{base}/api/widget/sessions/", start_body, origin)
        assert status == 201, body
        session = json.loads(body)

        stop_db()
        answers = [
            http("POST", f"{base}/api/widget/sessions/", start_body, origin),
            http(
                "POST",
                f"{base}/api/widget/sessions/{session['session_id']}/messages/",
                {"text": "still there?"},
                {**origin, "X-Visitor-Token": session["visitor_token"]},
            ),
            http(
                "GET",
                f"{base}/api/sessions/",
                headers={"Authorization": "Token " + "0123456789abcdef" * 4},
            ),
        ]
        for status, headers, body in answers:
            assert status == 503, body
            assert headers["Content-Type"] == "application/json"
            assert headers["Retry-After"] == "5"
            assert json.loads(body)["code"] == "database_unavailable"
        assert http("GET", f"{base}/health")[0] == 503

        start_db()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and http("GET", f"{base}/health")[0] != 200:
            time.sleep(0.3)
        status, _, body = http(
            "POST",
            f"{base}/api/widget/sessions/{session['session_id']}/messages/",
            {"text": "back again"},
            {**origin, "X-Visitor-Token": session["visitor_token"]},
        )
        assert status == 201, body  # the same connections recover, the visitor carries on
    finally:
        server.terminate()
        server.wait(30)
