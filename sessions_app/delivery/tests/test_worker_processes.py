"""Real `manage.py deliver_webhooks` processes: killed mid-batch, stopped by SIGTERM, several
at once. They open the test database by name (connection.settings_dict), so the test data must
be committed: `transaction=True`.
"""

import pytest
from django.db import connection
from django.db.models import Count

from leadchat.testing import LoopbackServer
from sessions_app.delivery.tests.conftest import wait_until
from sessions_app.models import Delivery, DeliveryAttempt, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

# A lease a dead worker's rows come back from quickly; the system check wants it to be at least
# twice a send's hard deadline, hence the short deadline beside it.
SHORT_LEASE = {"DELIVERY_LEASE_SECONDS": "2", "WEBHOOK_TOTAL_TIMEOUT": "1"}


def delivered_count() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count()


def test_worker_killed_mid_batch_loses_nothing_after_restart(
    receiver, make_endpoint, captured_lead, worker_processes
):
    receiver.delay = 0.05
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/hook")
        for i in range(40):
            captured_lead(email=f"lead{i:02}@example.com")
        event_ids = set(Delivery.objects.values_list("event_id", flat=True))

        first = worker_processes("--batch-size", "40", env=SHORT_LEASE)
        assert wait_until(lambda: len(receiver.verified) >= 8, timeout=60)
        first.kill()
        # Killed mid-batch: part sent, part still claimed by the dead worker.
        assert Delivery.objects.filter(status=DeliveryStatus.SENDING).exists()
        assert delivered_count() < 40

        second = worker_processes("--batch-size", "40", env=SHORT_LEASE)
        delivered = wait_until(lambda: delivered_count() == 40, timeout=60)
        code, output = second.terminate()
        assert delivered, (output, list(Delivery.objects.values_list("status", "lease_until")))
    assert code == 0, output
    assert set(receiver.accepted) == event_ids  # every event at least once
    assert receiver.rejected == []
    assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()


def test_sigterm_finishes_the_send_in_progress_and_hands_back_the_rest(
    receiver, make_endpoint, captured_lead, worker_processes
):
    receiver.delay = 1.5
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/hook")
        for i in range(5):
            captured_lead(email=f"lead{i}@example.com")
        worker = worker_processes("--batch-size", "5")
        assert wait_until(lambda: len(receiver.in_flight) == 1, timeout=30)
        code, output = worker.terminate()
    assert code == 0, output
    assert "stopping after this send" in output
    # The send on the wire completed and was recorded; the rest are due again at once.
    assert delivered_count() == 1
    assert DeliveryAttempt.objects.count() == 1
    waiting = Delivery.objects.exclude(status=DeliveryStatus.DELIVERED)
    assert waiting.count() == 4
    assert set(waiting.values_list("status", "attempts", "lease_until")) == {
        (DeliveryStatus.PENDING, 0, None)
    }


def run_three_workers_against_one_backlog(receiver, make_endpoint, captured_lead, start):
    receiver.delay = 0.02
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/a")
        make_endpoint(f"{server.url}/b")
        for i in range(60):
            captured_lead(email=f"lead{i:02}@example.com")
        assert Delivery.objects.count() == 120
        workers = [start("--batch-size", "5", "--name", f"w{n}") for n in range(3)]
        assert wait_until(lambda: delivered_count() == 120, timeout=90)
        outputs = [worker.terminate() for worker in workers]
    assert all(code == 0 for code, _ in outputs), outputs
    assert receiver.overlaps == []  # no row was ever in flight twice at once
    # Each (event, endpoint) row was sent exactly once: one attempt per row.
    assert set(Delivery.objects.annotate(n=Count("attempt_log")).values_list("n", flat=True)) == {1}
    assert len(receiver.accepted) == 120
    # The backlog really was shared.
    assert DeliveryAttempt.objects.values("worker").distinct().count() >= 2


@pytest.mark.postgres
def test_several_workers_on_postgresql_never_send_a_row_twice_and_deliver_all(
    receiver, make_endpoint, captured_lead, worker_processes
):
    """SELECT ... FOR UPDATE SKIP LOCKED claims."""
    run_three_workers_against_one_backlog(receiver, make_endpoint, captured_lead, worker_processes)


def test_several_workers_on_sqlite_never_send_a_row_twice_and_deliver_all(
    receiver, make_endpoint, captured_lead, worker_processes
):
    """The conditional-UPDATE claims (SQLite file databases; skipped on :memory:)."""
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL variant covers this database")
    run_three_workers_against_one_backlog(receiver, make_endpoint, captured_lead, worker_processes)


@pytest.mark.postgres
def test_worker_survives_the_database_dropping_its_connections(
    receiver, make_endpoint, captured_lead, worker_processes
):
    """What a PostgreSQL restart or failover does to a running worker: its connections die.
    The worker must carry on once the database answers again, and lose no event."""
    receiver.delay = 0.02
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/hook")
        for i in range(10):
            captured_lead(email=f"before{i}@example.com")
        worker = worker_processes("--batch-size", "5", env={"DELIVERY_POLL_SECONDS": "0.2"})
        assert wait_until(lambda: delivered_count() == 10, timeout=60)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (terminated,) = cursor.fetchone()
        assert terminated >= 1  # the worker's connection really was cut

        for i in range(10):
            captured_lead(email=f"after{i}@example.com")
        delivered = wait_until(lambda: delivered_count() == 20, timeout=60)
        code, output = worker.terminate()
    assert delivered, output
    assert code == 0, output
    assert len(set(receiver.accepted)) == 20
    assert receiver.rejected == []
