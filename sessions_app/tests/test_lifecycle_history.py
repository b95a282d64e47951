"""Every lifecycle move (archive, unarchive, delete to the trash, restore) leaves one row."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from sessions_app import services
from sessions_app.errors import SessionDeleted, TransitionNotAllowed
from sessions_app.models import ArchiveStatus, ChatSession, LifecycleHistory
from sessions_app.tests.factories import ChatMessageFactory, ChatSessionFactory

pytestmark = pytest.mark.django_db


def history(session: ChatSession) -> list[tuple]:
    return [
        (row.kind, row.from_status, row.to_status, row.by)
        for row in LifecycleHistory.objects.filter(session=session).order_by("at", "id")
    ]


@pytest.mark.parametrize(
    ("move", "archived", "trashed", "expected"),
    [
        ("session_archive", False, False, ("archive", "active", "archived")),
        ("session_unarchive", True, False, ("archive", "archived", "active")),
        ("session_delete", False, False, ("trash", "live", "trashed")),
        ("session_restore", False, True, ("trash", "trashed", "live")),
    ],
)
def test_each_move_writes_one_row_with_from_to_by_and_at(
    agent_user, move, archived, trashed, expected
):
    session = ChatSessionFactory(
        archive_status=ArchiveStatus.ARCHIVED if archived else ArchiveStatus.ACTIVE,
        deleted_at=timezone.now() if trashed else None,
    )
    before = timezone.now()
    getattr(services, move)(session=session, by=agent_user)
    (row,) = LifecycleHistory.objects.filter(session=session)
    assert (row.kind, row.from_status, row.to_status) == expected
    assert row.by == agent_user
    # The move's own instant: the one stamped on the session.
    assert before <= row.at <= timezone.now()
    assert row.at == ChatSession.objects.get(pk=session.pk).updated_at


@pytest.mark.parametrize(
    ("move", "archived", "trashed", "error"),
    [
        ("session_archive", True, False, TransitionNotAllowed),
        ("session_unarchive", False, False, TransitionNotAllowed),
        ("session_archive", False, True, SessionDeleted),
        ("session_unarchive", True, True, SessionDeleted),
        ("session_delete", False, True, TransitionNotAllowed),
        ("session_restore", False, False, TransitionNotAllowed),
    ],
)
def test_a_refused_move_writes_no_row(agent_user, move, archived, trashed, error):
    session = ChatSessionFactory(
        archive_status=ArchiveStatus.ARCHIVED if archived else ArchiveStatus.ACTIVE,
        deleted_at=timezone.now() if trashed else None,
    )
    with pytest.raises(error):
        getattr(services, move)(session=session, by=agent_user)
    assert not LifecycleHistory.objects.exists()


def test_unarchive_keeps_who_archived_it_in_the_history(agent_user, admin_role_user):
    session = ChatSessionFactory()
    services.session_archive(session=session, by=agent_user)
    services.session_unarchive(session=session, by=admin_role_user)
    session.refresh_from_db()
    assert session.archived_by is None  # the session says who only while it is archived
    assert history(session) == [
        ("archive", "active", "archived", agent_user),
        ("archive", "archived", "active", admin_role_user),
    ]


def test_restore_keeps_who_trashed_it_in_the_history(agent_user, admin_role_user):
    session = ChatSessionFactory()
    services.session_delete(session=session, by=agent_user)
    services.session_restore(session=session, by=admin_role_user)
    session.refresh_from_db()
    assert session.deleted_by is None
    assert history(session) == [
        ("trash", "live", "trashed", agent_user),
        ("trash", "trashed", "live", admin_role_user),
    ]


def test_the_row_commits_or_rolls_back_with_its_move(agent_user):
    session = ChatSessionFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.session_archive(session=session, by=agent_user)
        raise RuntimeError("the caller's transaction fails after the move")
    session.refresh_from_db()
    assert session.archive_status == ArchiveStatus.ACTIVE
    assert not LifecycleHistory.objects.exists()


def test_a_failed_history_write_undoes_the_move(agent_user, monkeypatch):
    session = ChatSessionFactory()

    def refuse(**kwargs):
        raise RuntimeError("history table unavailable")

    monkeypatch.setattr(LifecycleHistory.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        services.session_delete(session=session, by=agent_user)
    session.refresh_from_db()
    assert session.deleted_at is None


def test_a_removed_user_leaves_the_row_without_a_name(agent_user):
    session = ChatSessionFactory()
    services.session_archive(session=session, by=agent_user)
    agent_user.delete()
    assert history(session) == [("archive", "active", "archived", None)]


def test_a_move_without_a_user_is_recorded_too():
    session = ChatSessionFactory()
    services.session_delete(session=session, by=None)
    assert history(session) == [("trash", "live", "trashed", None)]


# --- erasure: the rows go with their sessions ---------------------------------------------------


def test_erasing_a_lead_removes_the_history_of_its_sessions(agent_user):
    erased = ChatSessionFactory(lead_email="rosa@example.com")
    ChatMessageFactory(session=erased, text="hello")
    kept = ChatSessionFactory(lead_email="other@example.com")
    for session in (erased, kept):
        services.session_archive(session=session, by=agent_user)
        services.session_delete(session=session, by=agent_user)
    report = services.lead_erase(email="rosa@example.com")
    assert report.sessions == [str(erased.public_id)]
    assert not LifecycleHistory.objects.filter(session_id=erased.pk).exists()
    assert LifecycleHistory.objects.filter(session=kept).count() == 2


def test_a_dry_run_erasure_keeps_the_history(agent_user):
    session = ChatSessionFactory(lead_email="rosa@example.com")
    services.session_archive(session=session, by=agent_user)
    services.lead_erase(email="rosa@example.com", dry_run=True)
    assert LifecycleHistory.objects.filter(session=session).count() == 1


def test_the_purge_removes_the_history_of_the_trash_it_empties(agent_user):
    old_trash = ChatSessionFactory()
    services.session_delete(session=old_trash, by=agent_user)
    ChatSession.objects.filter(pk=old_trash.pk).update(
        deleted_at=timezone.now() - timedelta(days=400)
    )
    fresh = ChatSessionFactory()
    services.session_delete(session=fresh, by=agent_user)
    report = services.sessions_purge(older_than=timedelta(days=365))
    assert report.sessions == [str(old_trash.public_id)]
    assert list(LifecycleHistory.objects.values_list("session_id", flat=True)) == [fresh.pk]
