"""Issue 16, "The commands": a checkout that `make run` set up runs the README's commands as
written, a command without settings says in one line what to set, the base URL follows `make
run`'s port, and every project command refuses abbreviated options with a one-line error.

`make run` itself is run for real (its Makefile and scripts copied into a temporary checkout);
only the virtualenv's python is a stand-in that records each `manage.py` call with the
environment it got, so nothing is migrated, seeded or served. The commands are then run with
the real python against the .env that run wrote, in a clean environment.
"""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Warning
from django.core.management import CommandError, call_command, get_commands, load_command_class

from leadchat.checks import public_base_url_is_set_in_production, qa_emails_have_recipients
from leadchat.commands import LeadchatCommand

ROOT = Path(__file__).resolve().parents[2]
PROJECT_APPS = {"accounts", "sessions_app", "widget", "qa", "leadchat"}

FAKE_PYTHON = """#!/usr/bin/env bash
# Records `manage.py` calls with the environment make gave them; anything else is real python.
if [ "$1" = "manage.py" ]; then
  log="$(dirname "$0")/../../calls.log"
  echo "$* | LEADCHAT_RUN_URL=${LEADCHAT_RUN_URL:-} DEBUG=${DEBUG:-}" >> "$log"
  # The server and the worker run side by side until one ends: both get to start.
  case "$2" in runserver|deliver_webhooks) sleep 1 ;; esac
  exit 0
fi
exec %(python)s "$@"
"""


def clean_env(**extra: str) -> dict[str, str]:
    """What a newcomer's shell has: no DEBUG, no SECRET_KEY, no test settings."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(extra)
    return env


def run_make(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # A session of its own: scripts/run_dev.sh ends with `kill 0`, its whole process group.
    return subprocess.run(
        ["make", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def made_checkout(tmp_path_factory) -> Path:
    """A checkout in which `make run PORT=9100` ran (with the recording python)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    checkout = tmp_path_factory.mktemp("checkout")
    shutil.copy(ROOT / "Makefile", checkout / "Makefile")
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, checkout / name)
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON % {"python": sys.executable})
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (checkout / ".venv" / ".installed").touch()  # newer than requirements.txt: no pip install
    done = run_make("run", "PORT=9100", cwd=checkout)
    # run_dev.sh ends with `kill 0`, make included, once its two processes have ended: make's
    # exit status then depends on who went first, so what ran is read from its output.
    assert "leadchat is starting on http://127.0.0.1:9100/" in done.stdout, done.stderr
    assert "Error" not in done.stderr.replace("wait: No child processes", ""), done.stderr
    return checkout


def recorded_calls(checkout: Path) -> list[str]:
    return (checkout / "calls.log").read_text().splitlines()


def test_make_run_port_9100_hands_out_9100_everywhere(made_checkout):
    calls = recorded_calls(made_checkout)
    assert any(c.startswith("manage.py runserver 127.0.0.1:9100 ") for c in calls), calls
    assert any("seed_demo --origin http://127.0.0.1:9100" in c for c in calls), calls
    # Every step (the delivery worker's webhook and email links included) gets the base URL.
    assert all("LEADCHAT_RUN_URL=http://127.0.0.1:9100 " in c for c in calls), calls


def test_make_run_writes_a_private_dev_env_file_once(made_checkout):
    env_file = made_checkout / ".env"
    lines = env_file.read_text().splitlines()
    assert "DEBUG=true" in lines
    (secret,) = [line for line in lines if line.startswith("SECRET_KEY=")]
    assert len(secret.removeprefix("SECRET_KEY=")) >= 50
    assert env_file.stat().st_mode & 0o077 == 0
    before = env_file.read_text()
    again = run_make("run", cwd=made_checkout)
    assert "leadchat is starting" in again.stdout, again.stderr
    assert env_file.read_text() == before  # never rewritten (nor its key changed)


def test_the_env_file_is_git_ignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, capture_output=True, text=True
    )
    assert ignored.returncode == 0


def shell_python(env: dict[str, str]) -> str:
    """The `python3` a newcomer's shell finds (maybe one without Django), else this one."""
    return shutil.which("python3", path=env["PATH"]) or sys.executable


def run_manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shell_python(env), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def checkout_env(made_checkout, tmp_path_factory) -> dict[str, str]:
    """A clean shell in the checkout `make run` set up: its .env, its var/ directory."""
    var = tmp_path_factory.mktemp("var")
    return clean_env(LEADCHAT_ENV_FILE=str(made_checkout / ".env"), LEADCHAT_VAR_DIR=str(var))


def test_readme_commands_run_as_written_after_make_run(checkout_env):
    migrated = run_manage("migrate", "--noinput", env=checkout_env, timeout=300)
    assert migrated.returncode == 0, migrated.stderr
    # `python manage.py ...` with the shell's python: without Django it runs again in .venv.
    created = run_manage(
        "createuser",
        "ana",
        "--role",
        "agent",
        "--email",
        "ana@example.com",
        env={**checkout_env, "LEADCHAT_PASSWORD": "a-long-enough-passphrase-42"},
    )
    assert created.returncode == 0, created.stderr
    assert "Created 'ana' with role agent." in created.stdout


def test_the_embed_code_follows_make_runs_port(checkout_env):
    code = (
        "from django.contrib import admin; from widget.admin import SiteAdmin; "
        "from widget.models import Site; "
        "print(SiteAdmin(Site, admin.site).embed_snippet(Site(public_key='k1')))"
    )
    env = {**checkout_env, "LEADCHAT_RUN_URL": "http://127.0.0.1:9100"}
    shown = run_manage("shell", "-c", code, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "http://127.0.0.1:9100/widget/embed.js" in shown.stdout
    # An explicit PUBLIC_BASE_URL (the environment or .env) wins over make run's address.
    env["PUBLIC_BASE_URL"] = "https://chat.example.com/"
    shown = run_manage("shell", "-c", code, env=env)
    assert "https://chat.example.com/widget/embed.js" in shown.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["bad name!", "--role", "agent"], "The username 'bad name!' is not valid"),
        (["bob", "--role", "agent", "--email", "not-an-email"], "'not-an-email' is not a valid"),
    ],
)
def test_createuser_refuses_a_bad_username_or_email_in_one_line(checkout_env, args, reason):
    done = run_manage(
        "createuser", *args, env={**checkout_env, "LEADCHAT_PASSWORD": "a-long-passphrase-42"}
    )
    assert done.returncode != 0
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert reason in done.stderr


def test_without_settings_a_command_says_in_one_line_what_to_set(tmp_path):
    done = run_manage(
        "createuser",
        "ana",
        "--role",
        "agent",
        env=clean_env(LEADCHAT_ENV_FILE="", LEADCHAT_VAR_DIR=str(tmp_path)),
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("leadchat is not configured: SECRET_KEY must be set")
    assert "make run" in line and "DEBUG=true" in line


def test_an_abbreviated_option_is_refused_with_one_line_and_a_hint(checkout_env):
    done = run_manage("export_sessions", "--q", "refund", "-o", "-", env=checkout_env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "CommandError: unrecognized arguments: --q refund",
        "See: python manage.py export_sessions --help",
    ]
    missing = run_manage("createuser", "ana", env=checkout_env)
    assert missing.stderr.splitlines()[0] == (
        "CommandError: the following arguments are required: --role"
    )
    assert len(missing.stderr.splitlines()) == 2


def project_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app in PROJECT_APPS)


def test_every_project_command_refuses_abbreviations():
    commands = project_commands()
    assert len(commands) >= 12
    for name, app in commands:
        command = load_command_class(app, name)
        assert isinstance(command, LeadchatCommand), name
        assert command.create_parser("manage.py", name).allow_abbrev is False, name


@pytest.mark.django_db
def test_an_abbreviation_is_an_error_not_another_option():
    with pytest.raises(CommandError, match="unrecognized arguments: --q refund"):
        call_command("export_sessions", "--q", "refund", "--output", "-")


def test_production_without_public_base_url_warns(settings):
    settings.DEBUG = False
    settings.PUBLIC_BASE_URL_SET = False
    (warning,) = public_base_url_is_set_in_production(None)
    assert isinstance(warning, Warning) and warning.id == "leadchat.W001"
    assert "PUBLIC_BASE_URL is not set" in warning.msg
    settings.PUBLIC_BASE_URL_SET = True
    assert public_base_url_is_set_in_production(None) == []
    settings.PUBLIC_BASE_URL_SET = False
    settings.DEBUG = True  # the embedded run takes make run's address: nothing to warn about
    assert public_base_url_is_set_in_production(None) == []


def test_production_check_names_the_missing_public_base_url(tmp_path):
    env = clean_env(
        LEADCHAT_ENV_FILE="",
        LEADCHAT_VAR_DIR=str(tmp_path),
        DEBUG="false",
        SECRET_KEY="p" * 60,
        ALLOWED_HOSTS="leadchat.example.com",
    )
    done = run_manage("check", env=env)
    assert "leadchat.W001" in done.stderr, done.stderr
    done = run_manage("check", env={**env, "PUBLIC_BASE_URL": "https://leadchat.example.com"})
    assert "leadchat.W001" not in done.stderr


def test_make_run_warns_when_qa_emails_have_no_recipients(checkout_env):
    """`make run` migrates first: the warning of an empty QA_NOTIFY_EMAILS prints there (and
    when the server starts); with recipients it is gone, and other commands stay quiet."""
    under_make_run = {**checkout_env, "LEADCHAT_RUN_URL": "http://127.0.0.1:9100"}
    done = run_manage("migrate", "--noinput", env=under_make_run, timeout=300)
    assert "leadchat.W002" in done.stderr and "QA_NOTIFY_EMAILS is empty" in done.stderr
    done = run_manage("check", env={**under_make_run, "QA_NOTIFY_EMAILS": "qa@example.com"})
    assert "leadchat.W002" not in done.stderr
    assert "leadchat.W002" not in run_manage("check", env=checkout_env).stderr


def test_qa_recipients_check_speaks_only_under_make_run(settings):
    settings.QA_NOTIFY_EMAILS = []
    settings.LEADCHAT_RUN_URL = "http://127.0.0.1:8000"
    (warning,) = qa_emails_have_recipients(None)
    assert warning.id == "leadchat.W002"
    settings.LEADCHAT_RUN_URL = ""  # production, a script, the tests
    assert qa_emails_have_recipients(None) == []


def test_the_web_server_logs_the_missing_public_base_url_at_start(tmp_path):
    """gunicorn runs no system checks; loading the WSGI app logs the warning instead."""
    env = clean_env(
        LEADCHAT_ENV_FILE="",
        LEADCHAT_VAR_DIR=str(tmp_path),
        DEBUG="false",
        SECRET_KEY="p" * 60,
        DJANGO_SETTINGS_MODULE="leadchat.settings",
    )
    code = "import leadchat.wsgi"
    started = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    assert "WARNING leadchat: PUBLIC_BASE_URL is not set" in started.stderr
    env["PUBLIC_BASE_URL"] = "https://leadchat.example.com"
    started = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "PUBLIC_BASE_URL" not in started.stderr
