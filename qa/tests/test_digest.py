"""The daily QA digest: what it says on a known data set (qa/tests/trends_data.py), the worker's
schedule on a fake clock (once at QA_DIGEST_HOUR, never twice a day), and no recipients."""

import logging
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from qa.digest import services
from qa.digest.models import QADigest
from qa.digest.selectors import qa_digest
from qa.digest.services import (
    DigestAlreadyQueued,
    DigestNoRecipients,
    digest_job_run,
    qa_digest_due,
    qa_digest_queue,
)
from qa.tests.trends_data import Clock, build_story
from sessions_app.delivery.worker import DeliveryWorker
from sessions_app.models import Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db

QA_TEAM = ["qa-team@example.com", "QA-Team@example.com ", "lead-qa@example.com"]
MONDAY_8 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, datetime(2026, 11, 17, 9, 0, tzinfo=UTC))


@pytest.fixture
def team(settings):
    settings.QA_NOTIFY_EMAILS = QA_TEAM
    settings.QA_DIGEST_HOUR = 7


@pytest.fixture
def story(clock, make_user, team):
    story = build_story(clock, make_user)
    clock.set(MONDAY_8)
    return story


@pytest.fixture(autouse=True)
def _fresh_job_memory(monkeypatch):
    # digest_job_run remembers the day it found settled, per process: each test starts anew.
    monkeypatch.setattr(services, "_settled_day", None)


def digests() -> list[Delivery]:
    return list(Delivery.objects.filter(event_type=services.DIGEST_EMAIL_EVENT).order_by("id"))


def digest_mails(mailoutbox) -> list:
    return [m for m in mailoutbox if m.subject.startswith("[leadchat QA] Daily digest")]


def test_digest_content_on_the_known_week(story):
    digest = qa_digest(now=MONDAY_8)
    s = story.sessions
    # s4 and s8 are unchecked; s9 too but decided "not sampled", so out of the queue.
    assert digest.unchecked == 2
    assert digest.oldest_unchecked is not None
    assert digest.oldest_unchecked.label == s["s4"].lead_name
    assert digest.oldest_unchecked.days == 12  # 17 Nov 10:04 to 30 Nov 08:00
    # s3 was flagged on 18 Nov 10:00 (11 whole days); s10 too, but it is in the trash.
    assert [(i.label, i.days) for i in digest.old_issue_list] == [(s["s3"].lead_name, 11)]
    assert digest.old_issues == 1
    assert [(i.label, i.note) for i in digest.awaiting_list] == [
        (s["s7"].lead_name, "Warmer greeting in the prompt")
    ]
    assert digest.awaiting_recheck == 1
    # The last seven days (24-30 Nov): s5, s6, s7 reviewed, s7 flagged "Tone".
    assert (digest.week_rates.reviewed, digest.week_rates.flagged) == (3, 1)
    assert digest.week_rate == "33.3%"
    assert digest.week_categories == [("Tone", 1, "33.3%")]
    assert digest.subject == (
        "[leadchat QA] Daily digest 2026-11-30: 2 unchecked, 1 issue open > 3 days, "
        "1 fixed to re-check"
    )


def test_digest_email_says_it_in_words_and_links(story):
    row = qa_digest_queue(now=MONDAY_8)
    (delivery,) = digests()
    assert row.delivery == delivery
    # Each address once, as the other QA emails (case-insensitively).
    assert delivery.payload["to"] == ["qa-team@example.com", "lead-qa@example.com"]
    text = delivery.payload["text"]
    s3 = story.sessions["s3"]
    assert "2 unchecked sessions in the review queue." in text
    assert f"Oldest: {story.sessions['s4'].lead_name} (Spring offer), started 2026-11-17" in text
    assert "ISSUES OPEN LONGER THAN 3 DAYS: 1" in text
    assert f"- {s3.lead_name} (Spring offer), flagged 2026-11-18 (11 days): Made up a plan" in text
    assert f"http://testserver/admin/sessions_app/chatsession/{s3.pk}/change/" in text
    assert "FIXED, AWAITING A RE-CHECK: 1" in text
    assert "Warmer greeting in the prompt" in text
    assert "1 of 3 reviewed sessions flagged: issue rate 33.3%" in text
    assert "- Tone: 1 (33.3%)" in text
    assert "http://testserver/admin/sessions_app/chatsession/trends/" in text
    assert "&lt;" not in text and "&#x27;" not in text  # plain text is not HTML-escaped
    assert '<td align="right" style="padding-right: 1em;">1</td>' in delivery.payload["html"]


def test_stored_text_in_the_digest_html_is_escaped(story, clock):
    from qa.services import qa_feedback_save

    clock.set(datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
    qa_feedback_save(
        session=story.sessions["s7"], by=story.ada, feedback="<script>alert(1)</script>"
    )
    clock.set(MONDAY_8)
    qa_digest_queue(now=MONDAY_8)
    (delivery,) = digests()
    assert "<script>" not in delivery.payload["html"]
    assert "&lt;script&gt;" in delivery.payload["html"]
    assert "<script>alert(1)</script>" in delivery.payload["text"]


def test_worker_queues_the_digest_once_at_the_hour_and_sends_it(story, clock, mailoutbox):
    clock.set(datetime(2026, 11, 30, 6, 59, tzinfo=UTC))
    worker = DeliveryWorker(name="digest-worker", close_idle_sessions=False)
    worker.run(once=True)
    # The story's issue and fixed emails went out; no digest before the hour.
    assert digests() == [] and not digest_mails(mailoutbox)

    clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=UTC))
    worker.run(once=True)
    (delivery,) = digests()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    (mail,) = digest_mails(mailoutbox)
    assert mail.subject.startswith("[leadchat QA] Daily digest 2026-11-30")
    assert mail.to == ["qa-team@example.com", "lead-qa@example.com"]

    for later in (
        datetime(2026, 11, 30, 7, 5, tzinfo=UTC),
        datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
    ):
        clock.set(later)
        worker.run(once=True)
    assert len(digests()) == 1 and len(digest_mails(mailoutbox)) == 1  # not again that day


def test_schedule_on_a_fake_clock_once_per_utc_day(story, clock, settings):
    settings.QA_DIGEST_HOUR = 9
    queued = []
    for hour, minute in ((0, 0), (8, 59), (9, 0), (9, 1), (15, 0), (23, 59)):
        clock.set(datetime(2026, 11, 30, hour, minute, tzinfo=UTC))
        queued.append(qa_digest_due(now=clock.at) is not None)
    assert queued == [False, False, True, False, False, False]
    # The next day: not before the hour, then once.
    queued = []
    for hour in (8, 9, 10):
        clock.set(datetime(2026, 12, 1, hour, 30, tzinfo=UTC))
        queued.append(qa_digest_due(now=clock.at) is not None)
    assert queued == [False, True, False]
    assert list(QADigest.objects.order_by("day").values_list("day", flat=True)) == [
        datetime(2026, 11, 30).date(),
        datetime(2026, 12, 1).date(),
    ]
    assert len(digests()) == 2


def test_worker_job_counts_one_when_it_queues_and_then_rests(
    story, clock, django_assert_num_queries
):
    clock.set(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
    with django_assert_num_queries(0):  # before the hour: no query at all
        assert digest_job_run("w1", 10) == 0
    clock.set(datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert digest_job_run("w1", 10) == 1
    with django_assert_num_queries(0):  # settled for today: no query either
        assert digest_job_run("w1", 10) == 0
    assert len(digests()) == 1


def test_a_second_worker_that_passes_the_hour_sends_nothing(story, clock, monkeypatch):
    """Another worker's transaction commits today's row between this worker's check and its
    insert: the insert fails on the unique day and this worker's outbox row is rolled back."""
    clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=UTC))
    original = services.qa_digest

    def other_worker_first(*, now):
        QADigest.objects.create(day=now.date(), queued_by="worker")
        return original(now=now)

    monkeypatch.setattr(services, "qa_digest", other_worker_first)
    assert qa_digest_due(now=clock.at) is None
    assert digests() == []  # ours rolled back; the other worker's is its own
    assert QADigest.objects.count() == 1


def test_no_recipients_queues_nothing_and_says_so(story, settings, caplog):
    settings.QA_NOTIFY_EMAILS = []
    with pytest.raises(DigestNoRecipients, match="QA_NOTIFY_EMAILS is empty"):
        qa_digest_queue(now=MONDAY_8)
    with caplog.at_level(logging.WARNING, logger="qa.digest.services"):
        assert digest_job_run("w1", 10) == 0
    assert "QA_NOTIFY_EMAILS is empty: no QA digest queued" in caplog.text
    with pytest.raises(CommandError, match="QA_NOTIFY_EMAILS is empty: no QA digest queued"):
        call_command("send_qa_digest")
    assert digests() == [] and not QADigest.objects.exists()


def test_command_queues_once_a_day(story, capsys):
    call_command("send_qa_digest")
    out = capsys.readouterr().out
    assert "QA digest of 2026-11-30 queued to qa-team@example.com, lead-qa@example.com" in out
    call_command("send_qa_digest")
    assert "The QA digest of 2026-11-30 was already queued at 08:00" in capsys.readouterr().out
    assert len(digests()) == 1
    assert QADigest.objects.get().queued_by == "command"
    with pytest.raises(DigestAlreadyQueued):
        qa_digest_queue(now=MONDAY_8)


def test_command_dry_run_prints_the_digest_and_queues_nothing(story, capsys):
    call_command("send_qa_digest", "--dry-run")
    out = capsys.readouterr().out
    assert out.startswith("To: qa-team@example.com, lead-qa@example.com\n")
    assert "Subject: [leadchat QA] Daily digest 2026-11-30: 2 unchecked" in out
    assert "FIXED, AWAITING A RE-CHECK: 1" in out
    assert digests() == [] and not QADigest.objects.exists()


def test_command_refuses_an_unknown_option_in_one_line():
    with pytest.raises(CommandError, match="unrecognized arguments: --now"):
        call_command("send_qa_digest", "--now")


def test_no_schedule_when_the_hour_is_off(story, clock, settings):
    settings.QA_DIGEST_HOUR = None
    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    assert digest_job_run("w1", 10) == 0
    assert qa_digest_due(now=clock.at) is None
    assert digests() == []
    # The command (cron's way) still queues it.
    call_command("send_qa_digest")
    assert len(digests()) == 1


def test_the_digest_goes_out_through_resend_with_an_idempotency_key(story, clock, settings):
    from leadchat.testing import LoopbackServer
    from sessions_app.delivery.tests.test_qa_emails import API_KEY, FakeResend

    fake = FakeResend()
    with LoopbackServer(fake) as server:
        settings.EMAIL_BACKEND = "sessions_app.delivery.resend.EmailBackend"
        settings.ANYMAIL = {
            "RESEND_API_KEY": API_KEY,
            "RESEND_API_URL": f"{server.url}/",
            "REQUESTS_TIMEOUT": 10,  # a loaded CI machine answers slowly; no hang here
        }
        # The story's issue and fixed emails first (at 06:00), then the digest at 07:00.
        clock.set(datetime(2026, 11, 30, 6, 0, tzinfo=UTC))
        worker = DeliveryWorker(name="digest-worker", close_idle_sessions=False)
        worker.run(once=True)
        before = len(fake.emails)
        clock.set(datetime(2026, 11, 30, 7, 0, tzinfo=UTC))
        worker.run(once=True)
    (delivery,) = digests()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    (email,) = fake.emails[before:]
    assert email["subject"].startswith("[leadchat QA] Daily digest 2026-11-30: 2 unchecked")
    assert email["to"] == ["qa-team@example.com", "lead-qa@example.com"]
    assert "FIXED, AWAITING A RE-CHECK: 1" in email["text"]
    assert fake.keys_seen[-1] == delivery.event_id  # Resend deduplicates a resend on it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_passing_the_hour_at_once_queue_one_digest(settings, monkeypatch):
    """Both workers find no row for today and build the digest; then both insert. PostgreSQL
    makes the second insert wait for the first transaction and fail on the unique day: one
    digest row, one outbox email."""
    import threading

    from django.db import connection

    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com"]
    settings.QA_DIGEST_HOUR = 7
    now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    for _round in range(5):
        built = threading.Barrier(2)
        original = services.qa_digest

        def build_then_wait(*, now, original=original, built=built):
            digest = original(now=now)
            built.wait(10)  # both have passed the "already queued?" check
            return digest

        monkeypatch.setattr(services, "qa_digest", build_then_wait)
        outcome: list[bool] = []

        def worker(outcome=outcome):
            try:
                outcome.append(qa_digest_due(now=now) is not None)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcome) == [False, True]
        assert QADigest.objects.filter(day=now.date()).count() == 1
        assert len(digests()) == 1
        Delivery.objects.all().delete()
        QADigest.objects.all().delete()
