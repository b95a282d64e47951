"""Sampling rules into the QA queue, decided by the worker on a fake clock."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from qa.sampling import services as sampling_services
from qa.sampling.models import SamplingRule, SessionSample
from qa.sampling.services import (
    in_random_share,
    sampling_rule,
    sampling_rule_save,
    session_needs_human,
    sessions_sample,
)
from qa.tests.conftest import login
from sessions_app.delivery.registry import worker_jobs
from sessions_app.models import ChatSession, MessageRole
from sessions_app.services import (
    automation_error_record,
    human_request,
    human_request_clear,
    lead_capture,
    message_add,
    session_start,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")
IDLE = timedelta(minutes=30)


@pytest.fixture(autouse=True)
def _idle(settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 30


def chat(site, *texts: str) -> ChatSession:
    session, _ = session_start(site=site, greeting="Hi!")
    for text in texts:
        message_add(session=session, role=MessageRole.VISITOR, text=text)
        message_add(session=session, role=MessageRole.AI, text="Noted.")
    session.refresh_from_db()
    return session


def rule(admin_role_user, **changes) -> SamplingRule:
    values = {
        "automation_errors": True,
        "needs_human": True,
        "email_incomplete": True,
        "keywords": "",
        "random_percent": 100,
        **changes,
    }
    return sampling_rule_save(by=admin_role_user, **values)


def decision(session) -> SessionSample | None:
    return SessionSample.objects.filter(session=session).first()


def test_default_rule_samples_every_quiet_session_and_leaves_active_ones_undecided(site):
    quiet = chat(site, "Hello")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    active = chat(site, "Still here")
    ChatSession.objects.filter(pk=active.pk).update(last_activity_at=clock - timedelta(minutes=5))
    assert sampling_rule().random_percent == 100  # nothing saved: the defaults
    assert sessions_sample(now=clock) == 1
    assert decision(quiet).sampled is True and decision(quiet).reasons == ["random"]
    assert decision(active) is None  # not quiet yet at this clock
    assert sessions_sample(now=clock) == 0  # decided once
    later = clock + IDLE
    assert sessions_sample(now=later) == 1
    assert decision(active).sampled is True


def test_each_rule_puts_its_sessions_in_the_queue_at_zero_percent(
    site, admin_role_user, monkeypatch
):
    rule(admin_role_user, random_percent=0, keywords="refund\nCancel my plan")
    plain = chat(site, "What are your hours?")
    errored = chat(site, "Hello")
    automation_error_record(message="n8n timeout", session=errored)
    keyword = chat(site, "I want a REFUND now")
    phrase = chat(site, "please cancel my plan today")
    emailed = chat(site, "Mail me")
    lead_capture(session=emailed, email="vera@example.com")  # no name: stays incomplete
    complete = chat(site, "Quote please")
    lead_capture(session=complete, name="Vera Visitor", email="vera2@example.com")
    human = chat(site, "Can I talk to a person?")
    human_request(session=human)
    # Asked, then answered by an agent (the flag is cleared): still a request for a person.
    taken = chat(site, "A real person please")
    human_request(session=taken)
    human_request_clear(session=taken, by=admin_role_user)
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    assert sessions_sample(now=clock) == 8
    expected = {
        plain.pk: (False, []),
        errored.pk: (True, ["automation_error"]),
        keyword.pk: (True, ["keyword:refund"]),
        phrase.pk: (True, ["keyword:cancel my plan"]),
        emailed.pk: (True, ["email_incomplete"]),
        complete.pk: (False, []),
        human.pk: (True, ["needs_human"]),
        taken.pk: (True, ["needs_human"]),
    }
    got = {s.session_id: (s.sampled, s.reasons) for s in SessionSample.objects.all()}
    assert got == expected
    assert all(s.random_percent == 0 for s in SessionSample.objects.all())


def test_rules_switched_off_do_not_sample(site, admin_role_user):
    rule(
        admin_role_user,
        automation_errors=False,
        email_incomplete=False,
        random_percent=0,
    )
    errored = chat(site, "Hello")
    automation_error_record(message="boom", session=errored)
    sessions_sample(now=timezone.now() + IDLE + timedelta(minutes=1))
    assert decision(errored).sampled is False


def test_needs_human_is_a_request_open_or_answered():
    now = timezone.now()
    assert session_needs_human(SimpleNamespace(needs_human=True, human_requested_at=now))
    assert session_needs_human(SimpleNamespace(needs_human=False, human_requested_at=now))
    assert not session_needs_human(SimpleNamespace(needs_human=False, human_requested_at=None))


def test_random_share_is_reproducible_and_grows_with_the_percentage(site, admin_role_user):
    sessions = [chat(site) for _ in range(200)]
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    rule(admin_role_user, random_percent=30)
    sessions_sample(now=clock)
    at_30 = set(SessionSample.objects.filter(sampled=True).values_list("session_id", flat=True))
    assert 30 <= len(at_30) <= 90  # about 60 of 200
    # Decided again from scratch: the same sessions (a hash of the id, not a dice roll).
    SessionSample.objects.all().delete()
    sessions_sample(now=clock)
    again = set(SessionSample.objects.filter(sampled=True).values_list("session_id", flat=True))
    assert again == at_30
    # A larger share keeps every session the smaller one took.
    assert all(in_random_share(s.public_id, 60) for s in sessions if s.pk in at_30)
    assert all(in_random_share(s.public_id, 100) for s in sessions)
    assert not any(in_random_share(s.public_id, 0) for s in sessions)


def test_a_not_sampled_session_with_new_messages_is_decided_again(site, admin_role_user):
    rule(admin_role_user, random_percent=0, keywords="refund")
    session = chat(site, "Hello")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    sessions_sample(now=clock)
    assert decision(session).sampled is False
    message_add(session=session, role=MessageRole.VISITOR, text="Actually, a refund please")
    ChatSession.objects.filter(pk=session.pk).update(last_activity_at=clock)
    assert sessions_sample(now=clock + timedelta(minutes=5)) == 0  # not quiet yet
    assert sessions_sample(now=clock + IDLE + timedelta(minutes=1)) == 1
    sample = decision(session)
    assert (sample.sampled, sample.reasons) == (True, ["keyword:refund"])


def test_deleted_and_old_sessions_are_never_decided(site, agent_user, settings):
    settings.QA_SAMPLING_LOOKBACK_DAYS = 7
    from sessions_app.services import session_delete

    trashed = chat(site, "Hello")
    session_delete(session=trashed, by=agent_user)
    old = chat(site, "Long ago")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    ChatSession.objects.filter(pk=old.pk).update(last_activity_at=clock - timedelta(days=8))
    assert sessions_sample(now=clock) == 0


def test_default_queue_is_sampled_and_unchecked(qa_client, site, admin_role_user):
    rule(admin_role_user, random_percent=0, keywords="refund")
    picked = chat(site, "refund please")
    skipped = chat(site, "just browsing")
    undecided = chat(site, "hello")
    clock = timezone.now() + IDLE + timedelta(minutes=1)
    ChatSession.objects.filter(pk=undecided.pk).update(last_activity_at=clock)
    sessions_sample(now=clock)
    listed = qa_client.get(CHANGELIST).context["cl"].result_list
    assert {s.pk for s in listed} == {picked.pk, undecided.pk}
    not_sampled = qa_client.get(CHANGELIST, {"sampling": "not_sampled"}).context["cl"]
    assert [s.pk for s in not_sampled.result_list] == [skipped.pk]
    everything = qa_client.get(CHANGELIST, {"sampling": "all"}).context["cl"].result_list
    assert len(everything) == 3
    page = qa_client.get(reverse("admin:sessions_app_chatsession_change", args=[skipped.pk]))
    assert "not sampled" in page.content.decode()


def test_changelist_query_count_is_unchanged_by_sampling(qa_client, site, admin_role_user):
    for i in range(10):
        chat(site, f"question {i}")
    qa_client.get(CHANGELIST)  # warm the per-process caches
    with CaptureQueriesContext(connection) as before:
        assert qa_client.get(CHANGELIST).status_code == 200
    rule(admin_role_user, random_percent=50)
    sessions_sample(now=timezone.now() + IDLE + timedelta(minutes=1))
    assert SessionSample.objects.count() == 10
    with CaptureQueriesContext(connection) as after:
        assert qa_client.get(CHANGELIST).status_code == 200
    assert len(after.captured_queries) == len(before.captured_queries)


def test_only_admins_set_the_rule_in_the_admin(client, qa_user, admin_role_user):
    login(client, qa_user)
    assert client.get(reverse("admin:qa_samplingrule_changelist")).status_code == 403
    with pytest.raises(PermissionDenied):
        sampling_rule_save(
            by=qa_user,
            automation_errors=True,
            needs_human=True,
            email_incomplete=True,
            keywords="",
            random_percent=10,
        )
    login(client, admin_role_user)
    add = client.get(reverse("admin:qa_samplingrule_changelist"))
    assert add.status_code == 302 and add.url == reverse("admin:qa_samplingrule_add")
    response = client.post(
        reverse("admin:qa_samplingrule_add"),
        {
            "automation_errors": "on",
            "email_incomplete": "on",
            "keywords": "refund\ncancel",
            "random_percent": "20",
        },
    )
    assert response.status_code == 302
    saved = SamplingRule.objects.get()
    assert (saved.random_percent, saved.needs_human, saved.keyword_list) == (
        20,
        False,
        ["refund", "cancel"],
    )
    assert saved.updated_by == admin_role_user
    bad = client.post(
        reverse("admin:qa_samplingrule_change", args=[saved.pk]),
        {"keywords": "", "random_percent": "150"},
    )
    assert bad.status_code == 200  # the form again, with the error
    assert "less than or equal to 100" in bad.content.decode()
    assert SamplingRule.objects.get().random_percent == 20


def test_the_worker_runs_replays_and_sampling():
    names = {job.name for job in worker_jobs()}
    assert {"qa-replay", "qa-sampling"} <= names


def test_the_sampling_job_pauses_after_a_pass_with_nothing_to_decide(site, monkeypatch):
    monkeypatch.setattr(sampling_services, "_idle_since", None)
    assert sampling_services.sampling_job_run("w", 10) == 0  # nothing quiet yet
    session = chat(site, "Hello")
    ChatSession.objects.filter(pk=session.pk).update(
        last_activity_at=timezone.now() - IDLE - timedelta(minutes=1)
    )
    assert sampling_services.sampling_job_run("w", 10) == 0  # paused: no scan
    assert decision(session) is None
    monkeypatch.setattr(sampling_services, "SAMPLING_IDLE_PAUSE", 0.0)
    assert sampling_services.sampling_job_run("w", 10) == 1
    assert decision(session).sampled is True
