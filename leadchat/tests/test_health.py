import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadchat.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_health_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_root_answers_json_to_api_clients(client):
    response = client.get("/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "leadchat"
    assert body["version"]
    assert body["health"]["database"] == "ok"


@pytest.mark.django_db
def test_root_sends_browsers_to_the_dashboard(client):
    response = client.get("/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


# The test process sets these for itself; a "production" child must not inherit them.
TEST_ONLY_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY", "DEBUG", "DATABASE_URL"}


def production_env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in TEST_ONLY_ENV}
    return {**clean, "DJANGO_SETTINGS_MODULE": "leadchat.settings", **env}


def _run_in_subprocess(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_is_503_json_when_the_database_is_unreachable():
    """A real process whose DATABASE_URL points at a port where nothing listens."""
    code = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/health');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = _run_in_subprocess(
        code,
        DEBUG="false",
        SECRET_KEY="x" * 50,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 503, "body": {"status": "unavailable", "database": "unavailable"}}


def test_settings_refuse_to_start_without_secret_key_when_debug_off(tmp_path):
    result = _run_in_subprocess(
        "import django; django.setup()", DEBUG="false", LEADCHAT_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_debug_generates_and_keeps_a_dev_secret_key(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {"DEBUG": "true", "SECRET_KEY": "", "LEADCHAT_VAR_DIR": str(tmp_path)}
    first = _run_in_subprocess(code, **env)
    second = _run_in_subprocess(code, **env)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_check_deploy_passes_with_production_values(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(
            DEBUG="false",
            SECRET_KEY="k" * 20 + "-production-like-secret-key-value-9876",
            ALLOWED_HOSTS="leadchat.example.com",
            PUBLIC_BASE_URL="https://leadchat.example.com",
            LEADCHAT_VAR_DIR=str(tmp_path),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_favicon_ico_points_at_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/dashboard/favicon.svg"
