"""The suite runs on several pytest-xdist workers at once (`make test`): each worker's tests, and
the processes they start, must use that worker's own database and nothing another worker uses."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from leadchat.testing import subprocess_database_url
from widget.tests.factories import SiteFactory

ROOT = Path(__file__).resolve().parents[2]
WORKER = os.environ.get("PYTEST_XDIST_WORKER")

COUNT_SITES = (
    "import django; django.setup();"
    "from widget.models import Site;"
    "import sys; print(Site.objects.filter(name=sys.argv[1]).count())"
)


def test_each_worker_has_a_test_database_of_its_own(db):
    if WORKER is None:
        pytest.skip("not under pytest-xdist (make test runs it there)")
    name = str(connection.settings_dict["NAME"])
    # pytest-django suffixes the test database per worker: var/test.sqlite3_gw0, test_x_gw0.
    assert name.endswith(f"_{WORKER}"), name


@pytest.mark.django_db(transaction=True)
def test_a_subprocess_opens_the_database_this_test_writes():
    """`subprocess_database_url`, which every worker-process and readiness test hands over."""
    url = subprocess_database_url()
    if url is None:
        pytest.skip("an in-memory database cannot be shared with a subprocess")
    name = f"xdist-probe-{WORKER or 'main'}"
    SiteFactory(name=name)

    done = subprocess.run(
        [sys.executable, "-c", COUNT_SITES, name],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "leadchat.settings_test", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the row this test committed, in this worker's database


def test_every_collected_test_has_a_node_id_of_its_own(request):
    """xdist schedules a file's tests by node id (`--dist loadfile`): two tests with one id run
    once between them, and the rest vanish without a word (this was 16 of the 17 fuzzed API
    operations, see leadchat/tests/conftest.py)."""
    ids = [item.nodeid for item in request.session.items]
    duplicated = sorted({nodeid for nodeid in ids if ids.count(nodeid) > 1})
    assert duplicated == []
