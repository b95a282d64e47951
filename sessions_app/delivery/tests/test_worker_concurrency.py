"""Concurrent sends inside a worker (DELIVERY_CONCURRENCY / --concurrency): every row still goes
out exactly once across processes, and a receiver that hangs holds one thread for at most the
hard deadline while the other receivers' rows go on."""

import itertools
import threading
import time
from collections import Counter

import pytest
from django.db.models import Count

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from sessions_app.delivery.tests.conftest import wait_until
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import Delivery, DeliveryStatus


class CountingResponder:
    """Wraps a receiver: counts each (path, webhook-id) and the most requests in flight at once."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seen: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.seen[f"{request.path}|{request.headers.get('webhook-id')}"] += 1
            self.times.setdefault(request.path, []).append(time.monotonic())
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return self.inner(request)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_four_at_once_deliver_every_row_exactly_once(
    receiver, make_endpoint, captured_lead, worker_processes
):
    receiver.delay = 0.05  # each send takes a while: the threads overlap
    counting = CountingResponder(receiver)
    with LoopbackServer(counting) as server:
        make_endpoint(f"{server.url}/a")
        make_endpoint(f"{server.url}/b")
        for i in range(50):
            captured_lead(email=f"lead{i:02}@example.com")
        assert Delivery.objects.count() == 100
        workers = [
            worker_processes("--concurrency", "4", "--batch-size", "10", "--name", f"w{n}")
            for n in range(2)
        ]
        assert wait_until(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 100,
            timeout=120,
        )
        outputs = [worker.terminate() for worker in workers]
    assert all(code == 0 for code, _ in outputs), outputs
    # The receiver counted each row once, never two of one row at the same time.
    assert len(counting.seen) == 100
    assert set(counting.seen.values()) == {1}
    assert receiver.overlaps == []
    assert len(receiver.accepted) == 100
    # One attempt per row, every one finished, shared by both workers.
    assert set(Delivery.objects.annotate(n=Count("attempt_log")).values_list("n", flat=True)) == {1}
    assert not Delivery.objects.filter(attempt_log__finished_at__isnull=True).exists()
    workers_used = set(Delivery.objects.values_list("attempt_log__worker", flat=True))
    assert workers_used == {"w0", "w1"}
    # The sends really overlapped: more than one worker process, and more than one thread each.
    assert counting.most_in_flight > 2


@pytest.mark.django_db
def test_a_hanging_receiver_holds_one_thread_for_the_deadline_while_the_others_go_on(
    make_endpoint, captured_lead, settings
):
    settings.WEBHOOK_TOTAL_TIMEOUT = 1.5

    def answer(request: RecordedRequest) -> Reply:
        if request.path == "/slow":
            return Reply(200, "", delay=30)  # never within the deadline
        return Reply(200, {"ok": True})

    counting = CountingResponder(answer)
    with LoopbackServer(counting) as server:
        make_endpoint(f"{server.url}/slow", name="slow")
        make_endpoint(f"{server.url}/fast", name="fast")
        for i in range(3):
            captured_lead(email=f"lead{i}@example.com")
        worker = DeliveryWorker(name="w", concurrency=4, close_idle_sessions=False)
        started = time.monotonic()
        try:
            assert worker.run_batch() == 6
        finally:
            worker.close()
        took = time.monotonic() - started
    fast_times = counting.times["/fast"]
    slow_times = counting.times["/slow"]
    # Every fast row went out while the first slow send was still hanging.
    assert len(fast_times) == 3
    assert max(fast_times) - started < settings.WEBHOOK_TOTAL_TIMEOUT
    assert set(Delivery.objects.filter(endpoint__name="fast").values_list("status", flat=True)) == {
        DeliveryStatus.DELIVERED
    }
    # The slow receiver got its rows one at a time (it never accepted one: slow start), each
    # cut at the deadline, and they wait for a retry.
    assert len(slow_times) == 3
    assert all(
        b - a >= settings.WEBHOOK_TOTAL_TIMEOUT - 0.1 for a, b in itertools.pairwise(slow_times)
    )
    slow = Delivery.objects.filter(endpoint__name="slow")
    assert set(slow.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert all(row.last_error.startswith("Timed out") for row in slow)
    assert all(
        latency < (settings.WEBHOOK_TOTAL_TIMEOUT + 0.5) * 1000
        for latency in slow.values_list("last_latency_ms", flat=True)
    )
    # The batch took the three slow deadlines, not more.
    assert took < 3 * settings.WEBHOOK_TOTAL_TIMEOUT + 3
