import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sessions_app import services, signals
from sessions_app.errors import InvalidLead, SessionDeleted, TransitionNotAllowed
from sessions_app.leads import lead_key
from sessions_app.models import (
    COMPLETION_MOVES,
    ArchiveStatus,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    MessageRole,
)
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured_signals():
    received = []

    def receiver(sender, session, **kwargs):
        received.append(session.pk)

    signals.lead_captured.connect(receiver)
    yield received
    signals.lead_captured.disconnect(receiver)


def test_session_start_stores_hashed_token_utm_and_greeting():
    site = SiteFactory(greeting="Hello there")
    session, token = services.session_start(
        site=site,
        page_url="https://landing.example.com/offer?utm_source=google",
        utm={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
        greeting=site.greeting,
    )
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.IN_PROGRESS
    assert session.visitor_token_hash != token
    assert services.visitor_token_matches(session, token)
    assert not services.visitor_token_matches(session, token + "x")
    assert not services.visitor_token_matches(session, "")
    assert (session.utm_source, session.utm_medium, session.utm_campaign) == (
        "google",
        "cpc",
        "spring",
    )
    assert session.message_count == 1
    assert list(session.messages.values_list("role", "text")) == [("ai", "Hello there")]


def test_message_add_counts_and_marks_ai_engaged():
    session = ChatSessionFactory()
    services.message_add(session=session, role=MessageRole.AI, text="Hi")
    assert session.ai_engaged is False
    services.message_add(session=session, role=MessageRole.VISITOR, text="I need a quote")
    session.refresh_from_db()
    assert session.message_count == 2
    assert session.ai_engaged is True
    assert session.messages.count() == 2


def test_message_add_keeps_the_ai_latency_counters():
    session = ChatSessionFactory()
    for role, latency in [
        (MessageRole.AI, 1000),
        (MessageRole.AI, "2000.5"),  # a numeric string counts
        (MessageRole.AI, "slow"),
        (MessageRole.AI, True),  # a bool is not a number of milliseconds
        (MessageRole.AI, -5),
        (MessageRole.AI, "NaN"),
        (MessageRole.AI, None),
        (MessageRole.VISITOR, 99999),  # only replies are timed
    ]:
        services.message_add(session=session, role=role, text="x", metadata={"latency_ms": latency})
    services.message_add(session=session, role=MessageRole.AI, text="no metadata")
    session.refresh_from_db()
    assert (session.ai_replies_timed, session.ai_latency_ms_total) == (2, 3000.5)
    assert session.message_count == 9


def test_message_add_rejects_unknown_role():
    with pytest.raises(ValueError, match="Unknown message role"):
        services.message_add(session=ChatSessionFactory(), role="robot", text="x")


def test_lead_capture_in_pieces_completes_once_with_signal(captured_signals):
    session = ChatSessionFactory()
    services.lead_capture(session=session, name="  Ana   Silva ")
    assert session.completion_status == CompletionStatus.IN_PROGRESS
    assert captured_signals == []

    services.lead_capture(session=session, email="Ana@Example.COM")
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.lead_name == "Ana Silva"
    assert session.lead_email == "Ana@example.com"
    assert session.lead_captured_at is not None
    assert session.lead_key == lead_key("ana@example.com")
    assert captured_signals == [session.pk]

    # Later corrections are stored but do not capture the lead a second time.
    services.lead_capture(session=session, email="ana.silva@example.com")
    session.refresh_from_db()
    assert session.lead_email == "ana.silva@example.com"
    assert session.lead_key == lead_key("ana.silva@example.com")
    assert captured_signals == [session.pk]


@pytest.mark.parametrize(
    "email", ["ana@", "ana@example", "ana example.com", "@example.com", "ana@exa mple.com", ""]
)
def test_email_rejected_when_invalid_and_nothing_stored(email):
    session = ChatSessionFactory(lead_name="Ana")
    with pytest.raises(InvalidLead) as excinfo:
        services.lead_capture(session=session, email=email)
    assert excinfo.value.field == "email"
    assert str(excinfo.value)
    session.refresh_from_db()
    assert session.lead_email == ""
    assert session.completion_status == CompletionStatus.IN_PROGRESS


def test_empty_name_rejected():
    with pytest.raises(InvalidLead, match="name"):
        services.lead_capture(session=ChatSessionFactory(), name="   ")


def test_complete_session_is_final_for_idle_close():
    old = timezone.now() - timedelta(hours=2)
    session = ChatSessionFactory(
        completion_status=CompletionStatus.COMPLETE, last_activity_at=old, lead_email="a@b.co"
    )
    assert services.sessions_close_idle() == 0
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.COMPLETE


def test_close_idle_moves_only_idle_in_progress_sessions():
    now = timezone.now()
    idle = ChatSessionFactory(last_activity_at=now - timedelta(minutes=31))
    fresh = ChatSessionFactory(last_activity_at=now - timedelta(minutes=5))
    complete = ChatSessionFactory(
        last_activity_at=now - timedelta(hours=3), completion_status=CompletionStatus.COMPLETE
    )
    already = ChatSessionFactory(
        last_activity_at=now - timedelta(hours=3), completion_status=CompletionStatus.INCOMPLETE
    )
    deleted = ChatSessionFactory(last_activity_at=now - timedelta(hours=3), deleted_at=now)

    assert services.sessions_close_idle() == 1

    states = dict(ChatSession.objects.values_list("pk", "completion_status"))
    assert states[idle.pk] == CompletionStatus.INCOMPLETE
    assert states[fresh.pk] == CompletionStatus.IN_PROGRESS
    assert states[complete.pk] == CompletionStatus.COMPLETE
    assert states[already.pk] == CompletionStatus.INCOMPLETE
    assert states[deleted.pk] == CompletionStatus.IN_PROGRESS
    idle.refresh_from_db()
    assert idle.ended_at is not None
    assert idle.updated_at > now - timedelta(seconds=5)


def test_close_idle_respects_custom_timeout():
    ChatSessionFactory(last_activity_at=timezone.now() - timedelta(minutes=10))
    assert services.sessions_close_idle(idle_for=timedelta(minutes=15)) == 0
    assert services.sessions_close_idle(idle_for=timedelta(minutes=5)) == 1


def test_returning_visitor_reopens_incomplete_session():
    session = ChatSessionFactory(
        completion_status=CompletionStatus.INCOMPLETE, ended_at=timezone.now()
    )
    services.message_add(session=session, role=MessageRole.VISITOR, text="I'm back")
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.IN_PROGRESS
    assert session.ended_at is None
    # message_add applies this move in SQL (a CASE); the allowed-moves table must still allow it.
    assert CompletionStatus.IN_PROGRESS in COMPLETION_MOVES[CompletionStatus.INCOMPLETE]


def test_ai_message_does_not_reopen_incomplete_session():
    session = ChatSessionFactory(completion_status=CompletionStatus.INCOMPLETE)
    services.message_add(session=session, role=MessageRole.AI, text="Still there?")
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.INCOMPLETE


def test_lead_in_incomplete_session_completes_it(captured_signals):
    session = ChatSessionFactory(completion_status=CompletionStatus.INCOMPLETE)
    services.lead_capture(session=session, name="Ben", email="ben@example.org")
    assert session.completion_status == CompletionStatus.COMPLETE
    assert captured_signals == [session.pk]


def test_archive_and_unarchive_record_who_and_leave_completion_alone(agent_user):
    session = ChatSessionFactory(completion_status=CompletionStatus.COMPLETE)
    services.session_archive(session=session, by=agent_user)
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ARCHIVED
    assert session.archived_by == agent_user
    assert session.archived_at is not None
    assert session.completion_status == CompletionStatus.COMPLETE
    assert not ChatSession.objects.visible().filter(pk=session.pk).exists()

    services.session_unarchive(session=session, by=agent_user)
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ACTIVE
    assert session.archived_by is None
    assert ChatSession.objects.visible().filter(pk=session.pk).exists()


def test_archive_twice_is_refused_with_allowed_moves():
    session = ChatSessionFactory(archive_status=ArchiveStatus.ARCHIVED)
    with pytest.raises(TransitionNotAllowed, match="Allowed from 'archived': active"):
        services.session_archive(session=session, by=None)


def test_unarchive_active_is_refused():
    with pytest.raises(TransitionNotAllowed):
        services.session_unarchive(session=ChatSessionFactory(), by=None)


def test_delete_and_restore_keep_data_and_archive_state(agent_user):
    session = ChatSessionFactory(archive_status=ArchiveStatus.ARCHIVED, lead_name="Ana")
    services.message_add(session=session, role=MessageRole.VISITOR, text="hello")
    services.session_delete(session=session, by=agent_user)
    session.refresh_from_db()
    assert session.deleted_at is not None and session.deleted_by == agent_user
    assert ChatSession.objects.deleted().filter(pk=session.pk).exists()
    assert not ChatSession.objects.not_deleted().filter(pk=session.pk).exists()

    services.session_restore(session=session, by=agent_user)
    session.refresh_from_db()
    assert session.deleted_at is None
    assert session.archive_status == ArchiveStatus.ARCHIVED
    assert session.lead_name == "Ana"
    assert session.messages.count() == 1


def test_delete_twice_and_restore_live_session_are_refused():
    session = ChatSessionFactory()
    with pytest.raises(TransitionNotAllowed, match="not in the trash"):
        services.session_restore(session=session, by=None)
    services.session_delete(session=session, by=None)
    with pytest.raises(TransitionNotAllowed, match="already in the trash"):
        services.session_delete(session=session, by=None)


def test_deleted_session_refuses_messages_archive_and_lead():
    session = ChatSessionFactory(deleted_at=timezone.now())
    with pytest.raises(SessionDeleted):
        services.message_add(session=session, role=MessageRole.VISITOR, text="x")
    with pytest.raises(SessionDeleted):
        services.session_archive(session=session, by=None)
    with pytest.raises(SessionDeleted):
        services.lead_capture(session=session, name="Ana", email="ana@example.com")
    assert ChatMessage.objects.count() == 0


def test_automation_error_replay_stored_once():
    session = ChatSessionFactory()
    first, created = services.automation_error_record(
        message="boom", workflow="Leads", execution_id="42", session=session
    )
    again, created_again = services.automation_error_record(
        message="boom", workflow="Leads", execution_id="42"
    )
    assert created and not created_again
    assert first.pk == again.pk
    _, created_blank = services.automation_error_record(message="no id")
    _, created_blank_2 = services.automation_error_record(message="no id")
    assert created_blank and created_blank_2


def test_automation_error_resolve_records_who(agent_user):
    error, _ = services.automation_error_record(message="boom")
    services.automation_error_resolve(error=error, by=agent_user)
    error.refresh_from_db()
    assert error.resolved and error.resolved_by == agent_user and error.resolved_at


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_lead_captures_complete_the_session_once(captured_signals):
    """Two requests racing to complete one lead: the row lock lets exactly one send the signal."""
    session = ChatSessionFactory(lead_name="Ana")
    barrier = threading.Barrier(2)
    errors = []

    def capture(email: str) -> None:
        try:
            barrier.wait()
            services.lead_capture(session=ChatSession.objects.get(pk=session.pk), email=email)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=capture, args=(f"ana{i}@example.com",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert captured_signals == [session.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_idle_close_does_not_overwrite_a_concurrent_visitor_message():
    """The visitor's message locks the row; the conditional UPDATE waits, then re-checks."""
    from django.db import transaction

    session = ChatSessionFactory(last_activity_at=timezone.now() - timedelta(hours=1))
    closed = []
    with transaction.atomic():
        ChatSession.objects.select_for_update().get(pk=session.pk)
        thread = threading.Thread(
            target=lambda: (closed.append(services.sessions_close_idle()), connection.close())
        )
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the idle close should wait for the row lock"
        ChatSession.objects.filter(pk=session.pk).update(last_activity_at=timezone.now())
    thread.join()
    assert closed == [0]
    session.refresh_from_db()
    assert session.completion_status == CompletionStatus.IN_PROGRESS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_messages_are_all_counted():
    """message_add's conditional UPDATE computes from the row's current values under its lock:
    messages posted at once from several connections are all counted, none overwritten."""
    session = ChatSessionFactory(message_count=0, completion_status=CompletionStatus.INCOMPLETE)
    errors = []

    def post(n):
        try:
            for i in range(10):
                role = MessageRole.VISITOR if i % 2 else MessageRole.AI
                services.message_add(
                    session=ChatSession.objects.get(pk=session.pk),
                    role=role,
                    text=f"{n}-{i}",
                    metadata={"latency_ms": 10} if role == MessageRole.AI else None,
                )
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    session.refresh_from_db()
    assert session.message_count == ChatMessage.objects.filter(session=session).count() == 40
    assert (session.ai_replies_timed, session.ai_latency_ms_total) == (20, 200.0)
    assert session.completion_status == CompletionStatus.IN_PROGRESS and session.ai_engaged
