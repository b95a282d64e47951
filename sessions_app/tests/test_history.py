"""The merged history of a session: registered sources, newest first, bounded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from qa import services as qa_services
from qa.history import qa_history_entries
from sessions_app import history, services
from sessions_app.history import (
    HistoryEntry,
    lifecycle_history_entries,
    register_history_source,
    session_history,
)
from sessions_app.models import LifecycleHistory
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db


def test_qa_registers_its_source_beside_the_lifecycle_one():
    """sessions_app does not import qa: qa adds its rows from QaConfig.ready()."""
    assert history._sources[:2] == [lifecycle_history_entries, qa_history_entries]


def test_a_source_registered_twice_counts_once(monkeypatch):
    monkeypatch.setattr(history, "_sources", [])

    def source(session, limit):
        return []

    register_history_source(source)
    register_history_source(source)
    assert history._sources == [source]


def test_history_merges_qa_and_lifecycle_moves_newest_first(qa_user, admin_role_user, agent_user):
    session = ChatSessionFactory()
    qa_services.qa_mark_issue(session=session, by=qa_user, note="Wrong price quoted")
    services.session_archive(session=session, by=agent_user)
    qa_services.qa_feedback_save(session=session, by=admin_role_user, feedback="Price list updated")
    services.session_unarchive(session=session, by=agent_user)
    services.session_delete(session=session, by=agent_user)

    entries = session_history(session)
    assert [(e.source, e.what, e.change, e.by, e.note) for e in entries] == [
        ("lifecycle", "Trash", "Not in the trash → In the trash", agent_user, ""),
        ("lifecycle", "Archive status", "Archived → Active", agent_user, ""),
        ("qa", "Developer feedback", "saved", admin_role_user, "Price list updated"),
        ("lifecycle", "Archive status", "Active → Archived", agent_user, ""),
        ("qa", "QA status", "Unchecked → Issue", qa_user, "Wrong price quoted"),
    ]
    assert entries == sorted(entries, key=lambda e: e.at, reverse=True)


def test_history_is_cut_at_the_limit_keeping_the_newest(agent_user):
    session = ChatSessionFactory()
    start = timezone.now() - timedelta(hours=1)
    LifecycleHistory.objects.bulk_create(
        LifecycleHistory(
            session=session,
            kind="archive",
            from_status="active" if i % 2 == 0 else "archived",
            to_status="archived" if i % 2 == 0 else "active",
            by=agent_user,
            at=start + timedelta(minutes=i),
        )
        for i in range(7)
    )
    entries = session_history(session, limit=3)
    assert [e.at for e in entries] == [start + timedelta(minutes=i) for i in (6, 5, 4)]


def test_every_source_is_asked_for_the_limit_and_merged(monkeypatch):
    now = timezone.now()
    asked = []

    def old(session, limit):
        asked.append(("old", limit))
        return [HistoryEntry("old", now - timedelta(days=1), None, "Old", "x")]

    def new(session, limit):
        asked.append(("new", limit))
        return [HistoryEntry("new", now, None, "New", "y")]

    monkeypatch.setattr(history, "_sources", [old, new])
    entries = session_history(ChatSessionFactory(), limit=5)
    assert [e.source for e in entries] == ["new", "old"]
    assert asked == [("old", 5), ("new", 5)]


def test_an_unknown_stored_status_is_shown_as_stored():
    session = ChatSessionFactory()
    LifecycleHistory.objects.create(
        session=session, kind="archive", from_status="frozen", to_status="archived"
    )
    (entry,) = lifecycle_history_entries(session, 10)
    assert entry.change == "frozen → Archived"
