"""The delivery settings' system checks, and settings that import no app code."""

import os
import subprocess
import sys

from sessions_app.delivery.checks import lead_webhook_secret_is_well_formed
from sessions_app.delivery.tests.conftest import BASE_DIR, SECRET


def test_a_malformed_lead_webhook_secret_is_a_check_error_with_a_hint(settings):
    for bad in ["not-a-secret", "whsec_", "whsec_c2hvcnQ=", "whsec_!!!notbase64!!!"]:
        settings.LEAD_WEBHOOK_SECRET = bad
        [error] = lead_webhook_secret_is_well_formed(None)
        assert error.id == "sessions_app.E003"
        assert "LEAD_WEBHOOK_SECRET" in error.msg and "whsec_" in error.hint


def test_an_empty_or_well_formed_lead_webhook_secret_passes(settings):
    for good in ["", SECRET]:
        settings.LEAD_WEBHOOK_SECRET = good
        assert lead_webhook_secret_is_well_formed(None) == []


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "leadchat.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_manage_py_check_refuses_a_malformed_secret_in_one_line_not_a_traceback():
    result = _run("manage.py", "check", LEAD_WEBHOOK_SECRET="whsec_tooshort")
    assert result.returncode != 0
    assert "sessions_app.E003" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_import_no_app_code_even_with_a_secret_set():
    code = (
        "import sys, leadchat.settings; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sessions_app', 'qa', 'widget', 'accounts'}))"
    )
    result = _run("-c", code, LEAD_WEBHOOK_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
