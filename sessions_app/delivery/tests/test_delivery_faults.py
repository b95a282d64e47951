"""Issue 11, delivery: the outbox's promises under real faults.

Each test here failed on the code before the fix: two workers sending one row at once behind a
slow receiver, leads dropped while an endpoint was off after a 410, a corrupt secret or an erased
row killing the worker, Retry-After using up the retries, retries signed with the new secret
only, the settings endpoint's admin edits silently reverted, a kill -9 send missing from the log.
"""

import base64
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadchat.testing import LoopbackServer, RecordedRequest, Reply
from sessions_app.delivery import outbox
from sessions_app.delivery.tests.conftest import SECRET, VerifyingReceiver, wait_until
from sessions_app.delivery.webhook_secrets import generate_webhook_secret
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import (
    AutomationError,
    ChatSession,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryState,
    DeliveryStatus,
    WebhookEndpoint,
)
from sessions_app.services import lead_erase


@pytest.fixture
def worker() -> DeliveryWorker:
    return DeliveryWorker(name="test-worker", batch_size=50, close_idle_sessions=False)


def delivered() -> int:
    """Lead webhooks delivered (the admins' emails about an endpoint are rows too)."""
    return Delivery.objects.filter(
        kind=DeliveryKind.WEBHOOK, status=DeliveryStatus.DELIVERED
    ).count()


# --- 1. No row on the wire twice at once, however slow the receiver ---------------------------


def two_workers_behind_a_slow_receiver(receiver, make_endpoint, captured_lead, start) -> None:
    """A batch that takes three times its lease to send: the old single lease per batch let the
    second worker reclaim and resend rows the first was still working through."""
    receiver.delay = 1.5
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/hook")
        for i in range(8):
            captured_lead(email=f"lead{i}@example.com")
        # Lease 4 s (twice the 2 s send deadline); 8 rows x 1.5 s = 12 s for one batch.
        env = {"DELIVERY_LEASE_SECONDS": "4", "WEBHOOK_TOTAL_TIMEOUT": "2"}
        workers = [start("--batch-size", "8", "--name", f"w{n}", env=env) for n in range(2)]
        finished = wait_until(lambda: delivered() == 8, timeout=90)
        outputs = [w.terminate() for w in workers]
    assert finished, outputs
    assert receiver.overlaps == []  # never two sends of one row in flight at once
    assert sorted(receiver.accepted) == sorted(Delivery.objects.values_list("event_id", flat=True))
    # Exactly one send per row, each logged with its outcome.
    per_row = Delivery.objects.annotate(n=Count("attempt_log")).values_list("n", flat=True)
    assert set(per_row) == {1}
    assert not DeliveryAttempt.objects.filter(finished_at__isnull=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_behind_a_slow_receiver_never_send_a_row_twice_on_postgresql(
    receiver, make_endpoint, captured_lead, worker_processes
):
    two_workers_behind_a_slow_receiver(receiver, make_endpoint, captured_lead, worker_processes)


@pytest.mark.django_db(transaction=True)
def test_two_workers_behind_a_slow_receiver_never_send_a_row_twice_on_sqlite(
    receiver, make_endpoint, captured_lead, worker_processes
):
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL variant covers this database")
    two_workers_behind_a_slow_receiver(receiver, make_endpoint, captured_lead, worker_processes)


@pytest.mark.django_db
def test_a_row_whose_claim_was_taken_over_is_neither_sent_nor_moved(
    make_endpoint, captured_lead, settings
):
    make_endpoint("http://127.0.0.1:9/hook")
    captured_lead()
    [slow] = outbox.deliveries_claim(worker="slow", limit=1)
    # The slow worker is still busy with earlier rows when its claim on this one runs out.
    later = timezone.now() + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS + 1)
    [fast] = outbox.deliveries_claim(worker="fast", limit=1, now=later)
    attempt = outbox.delivery_send_begin(delivery=fast, worker="fast", now=later)
    assert attempt is not None
    # The fast worker's send renewed the lease: nobody else can claim it while it is out.
    assert outbox.deliveries_claim(worker="third", limit=1, now=later + timedelta(seconds=5)) == []
    assert outbox.delivery_send_begin(delivery=slow, worker="slow", now=later) is None
    assert DeliveryAttempt.objects.count() == 1


def test_the_lease_must_outlast_a_send(settings):
    from sessions_app.delivery.checks import delivery_lease_outlasts_a_send

    settings.WEBHOOK_TOTAL_TIMEOUT = 15
    settings.DELIVERY_LEASE_SECONDS = 20
    [error] = delivery_lease_outlasts_a_send(None)
    assert error.id == "sessions_app.E001" and "30" in error.msg
    settings.DELIVERY_LEASE_SECONDS = 120
    assert delivery_lease_outlasts_a_send(None) == []


# --- 2. A disabled endpoint holds its leads ----------------------------------------------------


@pytest.mark.django_db
def test_leads_captured_while_an_endpoint_is_off_after_a_410_go_out_when_it_is_on_again(
    receiver, make_endpoint, captured_lead, worker, client, admin_role_user
):
    gone = {"yes": True}
    receiver.answer = lambda request: Reply(410 if gone["yes"] else 200, "")
    with LoopbackServer(receiver) as server:
        endpoint = make_endpoint(f"{server.url}/hook")
        first = captured_lead(email="first@example.com")
        worker.run(once=True)
        endpoint.refresh_from_db()
        assert not endpoint.is_active
        # Leads keep arriving while the endpoint is off: each gets a held row.
        later = [captured_lead(email=f"later{i}@example.com") for i in range(3)]
        for session in [first, *later]:
            session.refresh_from_db()
            assert session.delivery_state == DeliveryState.PAUSED
        assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 4
        assert worker.run(once=True) == 0  # held, not sent
        assert AutomationError.objects.filter(node="endpoint.disabled").count() == 1

        # The admin says so, and switching it back on there releases them.
        client.force_login(admin_role_user)
        listing = client.get(reverse("admin:sessions_app_webhookendpoint_changelist"))
        assert "paused" in listing.content.decode()
        page = client.get(reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk]))
        assert "Paused: 4 delivery(ies) are held here" in page.content.decode()
        gone["yes"] = False
        response = client.post(
            reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk]),
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": "[]",
                "is_active": "on",
                "secret": endpoint.secret,
                "auth_header_name": "",
                "auth_header_value": "",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert worker.run(once=True) == 4
    assert delivered() == 4
    assert sorted(set(receiver.accepted)) == sorted(
        Delivery.objects.filter(kind=DeliveryKind.WEBHOOK).values_list("event_id", flat=True)
    )
    for session in ChatSession.objects.all():
        assert session.delivery_state == DeliveryState.DELIVERED


@pytest.mark.django_db
def test_rows_claimed_in_the_same_batch_after_a_410_wait_instead_of_failing(
    make_endpoint, captured_lead, worker
):
    with LoopbackServer(lambda request: Reply(410, "")) as server:
        endpoint = make_endpoint(f"{server.url}/hook")
        for i in range(3):
            captured_lead(email=f"lead{i}@example.com")
        assert worker.run_batch() == 3  # one claim holds all three
        assert len(server.requests) == 1  # the two after the 410 were not sent
    rows = Delivery.objects.all()
    assert set(rows.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert not rows.filter(status=DeliveryStatus.FAILED).exists()
    assert sorted(rows.values_list("attempts", flat=True)) == [0, 0, 1]
    outbox.webhook_endpoint_set_active(endpoint=endpoint, active=True)
    assert outbox.deliveries_claim(worker="w", limit=10).__len__() == 3


# --- 3. One row never takes the worker down ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_undecodable_secret_is_recorded_on_its_row_and_the_worker_carries_on(
    receiver, make_endpoint, captured_lead, worker_processes, settings
):
    with LoopbackServer(receiver) as server:
        broken = make_endpoint(f"{server.url}/broken")
        make_endpoint(f"{server.url}/good")
        # Stored by a migration, a shell or a restore: the form's validator never saw it.
        WebhookEndpoint.objects.filter(pk=broken.pk).update(secret="whsec_not*base64")
        captured_lead()
        process = worker_processes("--once")
        code, output = process.process.wait(60), process.process.stdout.read()
    assert code == 0, output  # the old worker died with binascii.Error, every time
    assert delivered() == 1
    row = Delivery.objects.get(endpoint=broken)
    assert row.status == DeliveryStatus.PENDING and row.crashes == 1
    attempt = row.attempt_log.get()
    assert attempt.error.startswith("Internal error: Error") and attempt.finished_at is not None

    # Each later try fails the same way; at DELIVERY_MAX_CRASHES it fails with an automation error.
    worker = DeliveryWorker(name="w", close_idle_sessions=False)
    clock = timezone.now()
    for _ in range(settings.DELIVERY_MAX_CRASHES - 1):
        clock = Delivery.objects.get(pk=row.pk).next_attempt_at + timedelta(seconds=1)
        worker.run_batch(now=clock)
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == settings.DELIVERY_MAX_CRASHES
    error = AutomationError.objects.get(source=AutomationError.Source.WEBHOOK)
    assert "failed in leadchat itself 3 time(s)" in error.message


@pytest.mark.django_db(transaction=True)
def test_a_row_erased_while_in_flight_does_not_strand_its_batch(
    receiver, make_endpoint, captured_lead, worker_processes
):
    receiver.delay = 2
    with LoopbackServer(receiver) as server:
        make_endpoint(f"{server.url}/hook")
        captured_lead(email="erase.me@example.com")
        for i in range(3):
            captured_lead(email=f"keep{i}@example.com")
        process = worker_processes("--batch-size", "10")
        assert wait_until(lambda: len(receiver.in_flight) == 1, timeout=30)
        in_flight = Delivery.objects.get(status=DeliveryStatus.SENDING, attempts=1)
        lead_erase(email=in_flight.subject_email)  # GDPR erasure mid-send
        finished = wait_until(lambda: delivered() == 3, timeout=30)
        code, output = process.terminate()
    assert finished, output
    assert code == 0, output
    assert "erased" in output
    assert not Delivery.objects.filter(subject_email=in_flight.subject_email).exists()


@pytest.mark.django_db(transaction=True)
def test_a_row_that_kills_workers_fails_after_n_sends_and_every_send_is_in_the_log(
    make_endpoint, captured_lead, worker_processes, settings
):
    """Three workers killed with -9 mid-send: the receiver saw three requests, the log shows
    three attempts (interrupted), and the fourth worker fails the row instead of dying too."""
    with LoopbackServer(lambda request: Reply(200, "", delay=30)) as server:
        make_endpoint(f"{server.url}/hook")
        captured_lead()
        env = {"DELIVERY_LEASE_SECONDS": "2", "WEBHOOK_TOTAL_TIMEOUT": "1"}
        for n in range(1, settings.DELIVERY_MAX_CRASHES + 1):
            victim = worker_processes(env=env)
            assert wait_until(lambda n=n: len(server.requests) == n, timeout=30)
            victim.kill()
            time.sleep(2.2)  # its lease runs out
        assert DeliveryAttempt.objects.count() == len(server.requests) == 3
        last = worker_processes("--once", env=env)
        code = last.process.wait(30)
        output = last.process.stdout.read()
        assert len(server.requests) == 3  # not sent a fourth time
    assert code == 0, output
    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.FAILED
    attempts = list(row.attempt_log.order_by("number"))
    assert [a.number for a in attempts] == [1, 2, 3]
    assert all(a.error.startswith("Interrupted") and a.finished_at for a in attempts)
    assert "failed in leadchat itself" in AutomationError.objects.get().message


# --- 4. Retry-After does not burn the schedule -------------------------------------------------


@pytest.mark.django_db
def test_retry_after_is_honoured_without_using_up_the_retries(
    make_endpoint, captured_lead, worker, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800]  # 35 minutes in all
    with LoopbackServer(lambda request: Reply(429, "busy", {"Retry-After": "3"})) as server:
        make_endpoint(f"{server.url}/hook")
        captured_lead()
        clock = timezone.now()
        for _ in range(15):  # the old code failed the row after len(schedule) + 1 tries
            worker.run_batch(now=clock)
            row = Delivery.objects.get()
            assert row.status == DeliveryStatus.PENDING
            assert 2.9 <= (row.next_attempt_at - row.last_attempt_at).total_seconds() <= 3.1
            clock = row.next_attempt_at
        assert row.schedule_step == 0 and row.attempts == 15
        # The cap is the schedule's span: past 35 minutes of trying, the row fails.
        worker.run_batch(now=row.window_started_at + timedelta(minutes=36))
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED
    assert AutomationError.objects.filter(source=AutomationError.Source.WEBHOOK).count() == 1


# --- 6. Secret rotation ------------------------------------------------------------------------


def verifies(secret: str, request: RecordedRequest) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


@pytest.mark.django_db
def test_a_retry_after_rotation_is_signed_with_the_new_and_the_previous_secret(
    make_endpoint, captured_lead, worker, client, admin_role_user, settings
):
    answers = iter([500, 200, 200])
    with LoopbackServer(lambda request: Reply(next(answers), "")) as server:
        endpoint = make_endpoint(f"{server.url}/hook")
        captured_lead()
        clock = timezone.now()
        worker.run_batch(now=clock)
        new_secret = generate_webhook_secret()
        client.force_login(admin_role_user)
        response = client.post(
            reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk]),
            {
                "name": endpoint.name,
                "url": endpoint.url,
                "events": "[]",
                "is_active": "on",
                "secret": new_secret,
                "auth_header_name": "",
                "auth_header_value": "",
            },
        )
        assert response.status_code == 302
        endpoint.refresh_from_db()
        assert endpoint.secret == new_secret and endpoint.previous_secret == SECRET
        worker.run_batch(now=Delivery.objects.get().next_attempt_at)
        first, retry = server.requests
        assert verifies(SECRET, first) and not verifies(new_secret, first)
        # Both receivers (not yet switched, already switched) accept the retry.
        assert verifies(SECRET, retry) and verifies(new_secret, retry)
        assert len(retry.headers["webhook-signature"].split(" ")) == 2

        # After the overlap window only the new secret signs.
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            secret_rotated_at=endpoint.secret_rotated_at
            - timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS + 1)
        )
        ping = outbox.ping_delivery_enqueue(endpoint=endpoint)
        worker.run_batch()
        assert Delivery.objects.get(pk=ping.pk).status == DeliveryStatus.DELIVERED
        late = server.requests[-1]
    assert len(late.headers["webhook-signature"].split(" ")) == 1


@pytest.mark.django_db
def test_the_settings_endpoint_is_shown_as_managed_by_the_environment(
    settings, client, admin_role_user, captured_lead
):
    settings.LEAD_WEBHOOK_URL = "http://127.0.0.1:9/from-env"
    settings.LEAD_WEBHOOK_SECRET = SECRET
    captured_lead()
    endpoint = WebhookEndpoint.objects.get(from_settings=True)
    client.force_login(admin_role_user)
    url = reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk])
    page = client.get(url).content.decode()
    assert "The environment: LEAD_WEBHOOK_URL" in page
    assert 'name="secret"' not in page and 'name="url"' not in page  # shown, not editable
    # A forged POST cannot change them either; the on/off switch still works here.
    response = client.post(
        url,
        {"url": "http://127.0.0.1:9/other", "secret": generate_webhook_secret(), "events": "[]"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/from-env" and endpoint.secret == SECRET
    assert not endpoint.is_active  # the checkbox was left off in that POST
    captured_lead(email="next@example.com")
    endpoint.refresh_from_db()
    assert not endpoint.is_active  # and the next lead does not switch it back on


@pytest.mark.django_db
def test_the_settings_secret_rotated_in_the_environment_keeps_the_old_one_signing(
    settings, captured_lead
):
    settings.LEAD_WEBHOOK_URL = "http://127.0.0.1:9/from-env"
    settings.LEAD_WEBHOOK_SECRET = SECRET
    captured_lead()
    settings.LEAD_WEBHOOK_SECRET = generate_webhook_secret()
    captured_lead(email="next@example.com")
    endpoint = WebhookEndpoint.objects.get(from_settings=True)
    assert outbox.endpoint_signing_secrets(endpoint) == [settings.LEAD_WEBHOOK_SECRET, SECRET]


# --- 7. What trusted senders add ---------------------------------------------------------------


@pytest.mark.django_db
def test_an_endpoint_failing_for_five_days_is_switched_off_and_the_admins_are_emailed(
    make_endpoint, captured_lead, worker, make_user, settings
):
    make_user("admin", username="ops", email="ops@example.com")
    make_user("agent", username="sales", email="sales@example.com")
    settings.WEBHOOK_RETRY_SCHEDULE = [3600] * 200  # keep retrying through the five days
    with LoopbackServer(lambda request: Reply(500, "down")) as server:
        endpoint = make_endpoint(f"{server.url}/hook")
        captured_lead()
        clock = timezone.now()
        worker.run_batch(now=clock)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None and endpoint.is_active
        while endpoint.is_active:
            clock = Delivery.objects.get(kind=DeliveryKind.WEBHOOK).next_attempt_at
            assert clock < timezone.now() + timedelta(days=6)
            worker.run_batch(now=clock)
            endpoint.refresh_from_db()
    assert clock - endpoint.failing_since >= timedelta(days=5)
    assert "failed for 5 days" in endpoint.disabled_reason
    held = Delivery.objects.get(kind=DeliveryKind.WEBHOOK)
    assert held.status == DeliveryStatus.PENDING  # held, not lost
    assert held.session.delivery_state == DeliveryState.PAUSED
    # The email goes through the outbox like every side effect, to the admins only.
    email = Delivery.objects.get(kind=DeliveryKind.EMAIL)
    assert email.payload["to"] == ["ops@example.com"]
    assert endpoint.name in email.payload["subject"]
    DeliveryWorker(name="mailer", close_idle_sessions=False).run(once=True)
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert "1 delivery(ies)" in mail.outbox[0].body


@pytest.mark.django_db
def test_redeliver_command_queues_failed_deliveries_since_a_time(make_endpoint, captured_lead):
    a = make_endpoint("http://127.0.0.1:9/a", name="a")
    b = make_endpoint("http://127.0.0.1:9/b", name="b")
    captured_lead()
    now = timezone.now()
    Delivery.objects.update(status=DeliveryStatus.FAILED, last_attempt_at=now)
    Delivery.objects.filter(endpoint=b).update(last_attempt_at=now - timedelta(days=3))
    out = StringIO()
    since = (now - timedelta(hours=1)).isoformat()
    call_command("redeliver", "--failed-since", since, "--dry-run", stdout=out)
    assert "1 failed delivery(ies) would be queued" in out.getvalue()
    call_command("redeliver", "--failed-since", since, "--endpoint", "a", stdout=out)
    assert Delivery.objects.get(endpoint=a).status == DeliveryStatus.PENDING
    assert Delivery.objects.get(endpoint=b).status == DeliveryStatus.FAILED
    call_command("redeliver", "--failed-since", (now - timedelta(days=4)).date().isoformat())
    assert Delivery.objects.get(endpoint=b).status == DeliveryStatus.PENDING
    for bad, message in [
        (["--failed-since", "last tuesday"], "not a date"),
        (["--failed-since", "2026-13-45"], "not a date"),
        (["--failed-since", "2026-12-01", "--endpoint", "nope"], "No single endpoint"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("redeliver", *bad)


@pytest.mark.django_db
def test_redeliver_failed_admin_action_asks_since_when_then_queues(
    make_endpoint, captured_lead, client, admin_role_user
):
    endpoint = make_endpoint("http://127.0.0.1:9/a")
    captured_lead()
    Delivery.objects.update(status=DeliveryStatus.FAILED, last_attempt_at=timezone.now())
    client.force_login(admin_role_user)
    url = reverse("admin:sessions_app_webhookendpoint_changelist")
    form = client.post(url, {"action": "redeliver_failed", "_selected_action": [endpoint.pk]})
    assert form.status_code == 200 and "Failed at or after" in form.content.decode()
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    done = client.post(
        url,
        {
            "action": "redeliver_failed",
            "_selected_action": [endpoint.pk],
            "post": "yes",
            "failed_since": since,
        },
        follow=True,
    )
    assert "queued 1 failed delivery(ies) again" in done.content.decode()
    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.PENDING and row.redelivery_requested_by == admin_role_user


@pytest.mark.parametrize("role", ["qa", "agent"])
@pytest.mark.django_db
def test_redeliver_failed_action_is_closed_to_non_admins(client, make_user, role, make_endpoint):
    endpoint = make_endpoint("http://127.0.0.1:9/a")
    client.force_login(make_user(role))
    response = client.post(
        reverse("admin:sessions_app_webhookendpoint_changelist"),
        {"action": "redeliver_failed", "_selected_action": [endpoint.pk], "post": "yes"},
    )
    assert response.status_code in (302, 403)


def test_verifying_receiver_rejects_a_signature_of_another_secret():
    """The fixture the rotation test leans on can fail."""
    receiver = VerifyingReceiver(secret=SECRET)
    body = b"{}"
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    headers = Webhook(other).sign("evt_1", timezone.now(), body.decode())
    request = RecordedRequest(
        "POST",
        "/",
        {
            "webhook-id": "evt_1",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": headers,
        },
        body,
    )
    receiver(request)
    assert receiver.rejected and not receiver.verified
