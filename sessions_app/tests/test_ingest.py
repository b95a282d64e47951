"""The ingest service (sessions_app.ingest) and what it adds to the one paths: message_add's
external id and reported time, session_for_conversation and its race."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from sessions_app import ingest, services
from sessions_app.errors import IngestRefused
from sessions_app.models import ChatMessage, ChatSession, CompletionStatus, MessageRole
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def ingest_one(**fields):
    values = {
        "channel": "telegram",
        "conversation_id": "-100123",
        "message_id": "1",
        "role": MessageRole.VISITOR,
        "text": "Hello",
        **fields,
    }
    return ingest.message_ingest(**values)


# --- message_add: external_id and created_at ----------------------------------------------------


def test_message_add_stores_the_external_id():
    session = ChatSessionFactory()
    message = services.message_add(session=session, role="visitor", text="x", external_id="m-1")
    assert ChatMessage.objects.get(pk=message.pk).external_id == "m-1"


def test_message_add_refuses_an_external_id_twice_in_a_session_and_counts_nothing():
    session = ChatSessionFactory(message_count=0)
    services.message_add(session=session, role="visitor", text="x", external_id="m-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        services.message_add(session=session, role="ai", text="y", external_id="m-1")
    session.refresh_from_db()
    assert session.message_count == ChatMessage.objects.count() == 1
    # The widget's messages have none: any number of them is fine.
    services.message_add(session=session, role="visitor", text="a")
    services.message_add(session=session, role="visitor", text="b")
    session.refresh_from_db()
    assert session.message_count == 3


def test_message_add_with_an_older_time_widens_the_session_and_updates_now():
    session = ChatSessionFactory(
        started_at=T0, last_activity_at=T0 + timedelta(hours=1), updated_at=T0, message_count=0
    )
    before = timezone.now()
    older = services.message_add(
        session=session, role="visitor", text="x", created_at=T0 - timedelta(minutes=5)
    )
    inside = services.message_add(
        session=session, role="ai", text="y", created_at=T0 + timedelta(minutes=30)
    )
    later = services.message_add(
        session=session, role="visitor", text="z", created_at=T0 + timedelta(hours=2)
    )
    expected = (T0 - timedelta(minutes=5), T0 + timedelta(hours=2))
    assert (session.started_at, session.last_activity_at) == expected  # the caller's instance
    session.refresh_from_db()
    assert (session.started_at, session.last_activity_at) == expected
    assert session.updated_at >= before
    assert session.message_count == 3
    stored = ChatMessage.objects.filter(pk__in=[older.pk, inside.pk, later.pk])
    assert sorted(stored.values_list("created_at", flat=True)) == [
        T0 - timedelta(minutes=5),
        T0 + timedelta(minutes=30),
        T0 + timedelta(hours=2),
    ]


def test_message_add_never_stores_a_time_ahead_of_now():
    session = ChatSessionFactory()
    message = services.message_add(
        session=session, role="visitor", text="x", created_at=timezone.now() + timedelta(hours=1)
    )
    assert message.created_at <= timezone.now()
    session.refresh_from_db()
    assert session.last_activity_at <= timezone.now()


def test_a_dated_visitor_message_still_reopens_an_incomplete_session():
    session = ChatSessionFactory(completion_status=CompletionStatus.INCOMPLETE)
    services.message_add(session=session, role="visitor", text="back", created_at=T0)
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.IN_PROGRESS and session.ai_engaged


# --- session_for_conversation -------------------------------------------------------------------


def test_session_for_conversation_starts_once_and_then_finds_it():
    first, started = services.session_for_conversation(
        channel="telegram", external_id="42", started_at=T0
    )
    again, started_again = services.session_for_conversation(channel="telegram", external_id="42")
    assert (started, started_again) == (True, False)
    assert again.pk == first.pk
    assert (first.started_at, first.visitor_token_hash, first.message_count) == (T0, "", 0)


def test_session_for_conversation_needs_an_id():
    with pytest.raises(ValueError):
        services.session_for_conversation(channel="telegram", external_id="")


def test_the_database_refuses_a_second_session_for_a_conversation():
    ChatSession.objects.create(channel="telegram", external_id="42")
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatSession.objects.create(channel="telegram", external_id="42")
    # Sessions without an external id (the widget's) are not constrained.
    ChatSession.objects.create(channel="telegram")
    ChatSession.objects.create(channel="telegram")


def test_losing_the_start_race_answers_the_winners_session(monkeypatch):
    """Single-connection version of the race: the lookup says none, the insert hits the
    winner's row. The PostgreSQL test below runs it for real with two connections."""
    winner = ChatSession.objects.create(channel="telegram", external_id="42")
    real = services.conversation_session
    calls = []

    def stale_first_lookup(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(services, "conversation_session", stale_first_lookup)
    session, started = services.session_for_conversation(channel="telegram", external_id="42")
    assert (session.pk, started, len(calls)) == (winner.pk, False, 2)
    assert ChatSession.objects.count() == 1


# --- message_ingest -----------------------------------------------------------------------------


def test_ingest_checks_channel_role_and_ids_before_writing():
    for fields, field in [
        ({"channel": "sms"}, "channel"),
        ({"role": "system"}, "role"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"message_id": ""}, "message_id"),
        ({"created_at": datetime(2026, 11, 30, 9)}, "created_at"),  # naive
    ]:
        with pytest.raises(IngestRefused) as refused:
            ingest_one(**fields)
        assert refused.value.field == field
    assert not ChatSession.objects.exists()


def test_ingest_clock_skew_and_earliest_bounds():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    ahead = ingest_one(message_id="a", created_at=now + ingest.CLOCK_SKEW, now=now)
    assert ahead.created
    assert ChatMessage.objects.get(external_id="a").created_at <= timezone.now()
    with pytest.raises(IngestRefused, match="future"):
        ingest_one(
            message_id="b", created_at=now + ingest.CLOCK_SKEW + timedelta(seconds=1), now=now
        )
    assert ingest_one(message_id="c", created_at=ingest.EARLIEST, now=now).created
    with pytest.raises(IngestRefused, match="before 2000"):
        ingest_one(message_id="d", created_at=ingest.EARLIEST - timedelta(seconds=1), now=now)


def test_a_failing_lead_rolls_back_the_message_and_a_session_it_started():
    with pytest.raises(IngestRefused) as refused:
        ingest_one(lead={"name": "Ana", "email": "ana@"})
    assert refused.value.field == "lead.email"
    assert not ChatSession.objects.exists() and not ChatMessage.objects.exists()


def test_losing_the_same_message_race_is_a_duplicate(monkeypatch):
    """The message is stored by another request between the check and the insert: the unique
    constraint refuses ours, and the answer is `duplicate` with the counters unchanged."""
    ingest_one(message_id="m1")
    session = ChatSession.objects.get()
    monkeypatch.setattr(ingest, "_already_stored", lambda **kwargs: False)
    result = ingest_one(message_id="m1", text="again")
    assert (result.created, result.session.pk) == (False, session.pk)
    session.refresh_from_db()
    assert session.message_count == ChatMessage.objects.count() == 1
    assert ChatMessage.objects.get().text == "Hello"


def test_an_integrity_error_that_is_not_the_race_is_not_hidden(monkeypatch):
    def refuse(**kwargs):
        raise IntegrityError("some other constraint")

    monkeypatch.setattr(ingest, "message_add", refuse)
    with pytest.raises(IntegrityError):
        ingest_one()
    assert not ChatSession.objects.exists()


# --- Concurrency on PostgreSQL ------------------------------------------------------------------


def _run_at_once(targets):
    errors: list[BaseException] = []

    def wrap(target):
        def run():
            try:
                target()
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_batches_of_a_new_conversation_at_once_make_one_session(monkeypatch):
    """Both requests look the conversation up before either inserts (a barrier holds them
    there), so both insert: one waits on the unique index for the other's commit, fails, and
    takes the winner's session. Every message of both batches is stored, counted once."""
    barrier = threading.Barrier(2, timeout=10)
    real = services.conversation_session
    lookups = []

    def lookup_then_wait(**kwargs):
        found = real(**kwargs)
        lookups.append(found)
        if len(lookups) <= 2:
            barrier.wait()
        return found

    monkeypatch.setattr(services, "conversation_session", lookup_then_wait)
    outcomes: list[tuple[str, int]] = []

    def batch(prefix):
        def run():
            for n in range(3):
                result = ingest_one(
                    conversation_id="-100777",
                    message_id=f"{prefix}{n}",
                    role=MessageRole.VISITOR if n % 2 == 0 else MessageRole.AI,
                )
                outcomes.append((prefix, result.session.pk))

        return run

    assert _run_at_once([batch("a"), batch("b")]) == []
    assert lookups[:2] == [None, None]  # both saw no session: the race really ran
    session = ChatSession.objects.get(channel="telegram", external_id="-100777")
    assert {pk for _, pk in outcomes} == {session.pk}
    assert session.message_count == ChatMessage.objects.filter(session=session).count() == 6
    assert ChatSession.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_message_posted_twice_at_once_is_stored_once():
    session, _ = services.session_for_conversation(channel="telegram", external_id="-100888")
    barrier = threading.Barrier(4, timeout=10)
    results = []

    def post():
        barrier.wait()
        results.append(ingest_one(conversation_id="-100888", message_id="same", text="hi"))

    assert _run_at_once([post] * 4) == []
    assert sorted(r.created for r in results) == [False, False, False, True]
    session.refresh_from_db()
    assert session.message_count == ChatMessage.objects.filter(session=session).count() == 1
