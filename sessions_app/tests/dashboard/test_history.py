"""Lifecycle history from the staff API's moves, and the History panel of the session page."""

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from qa import services as qa_services
from sessions_app import services
from sessions_app.models import ArchiveStatus, LifecycleHistory
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

BULK = "/api/sessions/bulk/"


def page_url(session) -> str:
    return reverse("dashboard:session", args=[session.public_id])


def make_session(*, archived: bool = False, trashed: bool = False):
    return ChatSessionFactory(
        archive_status=ArchiveStatus.ARCHIVED if archived else ArchiveStatus.ACTIVE,
        deleted_at=timezone.now() if trashed else None,
    )


# action, where the moved sessions start, where a refused one starts, the row of a move
BULK_CASES = [
    ("archive", {}, {"archived": True}, ("archive", "active", "archived")),
    ("unarchive", {"archived": True}, {}, ("archive", "archived", "active")),
    ("delete", {}, {"trashed": True}, ("trash", "live", "trashed")),
    ("restore", {"trashed": True}, {}, ("trash", "trashed", "live")),
]


@pytest.mark.parametrize(("action", "start", "refused_start", "moved"), BULK_CASES)
def test_bulk_endpoint_writes_one_row_per_session_moved(
    api, agent_user, action, start, refused_start, moved
):
    sessions = [make_session(**start) for _ in range(3)]
    refused = make_session(**refused_start)
    ids = [str(s.public_id) for s in [*sessions, refused]] + [str(uuid.uuid4())]
    response = api(agent_user).post(BULK, {"action": action, "ids": ids}, format="json")
    assert response.status_code == 200
    outcome = {row["id"]: row["ok"] for row in response.json()["results"]}
    assert [outcome[str(s.public_id)] for s in sessions] == [True, True, True]
    assert outcome[str(refused.public_id)] is False
    rows = LifecycleHistory.objects.order_by("session_id")
    assert [(r.session_id, r.kind, r.from_status, r.to_status, r.by) for r in rows] == [
        (s.pk, *moved, agent_user) for s in sessions
    ]


@pytest.mark.parametrize("action", ["archive", "delete"])
def test_single_session_endpoint_writes_one_row(api, agent_user, action):
    session = ChatSessionFactory()
    response = api(agent_user).post(f"/api/sessions/{session.public_id}/{action}/")
    assert response.status_code == 200
    (row,) = LifecycleHistory.objects.filter(session=session)
    assert row.by == agent_user


def test_qa_reviewer_refused_a_bulk_move_leaves_no_row(api, qa_user):
    session = ChatSessionFactory()
    response = api(qa_user).post(
        BULK, {"action": "archive", "ids": [str(session.public_id)]}, format="json"
    )
    assert response.status_code == 403
    assert not LifecycleHistory.objects.exists()


# --- the History panel ----------------------------------------------------------------------


def history_items(content: str) -> list[str]:
    """The text of each entry of the History panel, in page order."""
    panel = content[content.index('data-panel="history"') :]
    panel = panel[: panel.index("</section>")]
    return [" ".join(part.split("</li>")[0].split()) for part in panel.split("<li")[1:]]


def test_session_page_shows_qa_and_lifecycle_history_newest_first(
    client, agent_user, qa_user, admin_role_user
):
    session = ChatSessionFactory()
    qa_services.qa_mark_issue(session=session, by=qa_user, note="Quoted the old price")
    qa_services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Prices reloaded")
    services.session_archive(session=session, by=agent_user)
    services.session_unarchive(session=session, by=admin_role_user)
    services.session_delete(session=session, by=agent_user)

    client.force_login(agent_user)
    response = client.get(page_url(session))  # a session in the trash opens too
    assert response.status_code == 200
    items = history_items(response.content.decode())
    assert len(items) == 5
    expected = [
        ("Trash: Not in the trash → In the trash", "by alex-agent"),
        ("Archive status: Archived → Active", "by ada-admin"),
        ("Archive status: Active → Archived", "by alex-agent"),
        ("QA status: Issue → Fixed", "by ada-admin", "Prices reloaded"),
        ("QA status: Unchecked → Issue", "by quinn-qa", "Quoted the old price"),
    ]
    for item, parts in zip(items, expected, strict=True):
        for part in parts:
            assert part in item, (part, item)
    assert '<time datetime="' in items[0]


def test_session_page_without_history_says_what_it_will_hold(client, agent_user):
    client.force_login(agent_user)
    content = client.get(page_url(ChatSessionFactory())).content.decode()
    assert 'data-panel="history"' in content
    assert "No changes yet" in content


def test_session_page_shows_history_notes_as_text(client, agent_user, qa_user):
    session = ChatSessionFactory()
    qa_services.qa_mark_issue(session=session, by=qa_user, note='<img src=x onerror="alert(1)">')
    client.force_login(agent_user)
    content = client.get(page_url(session)).content.decode()
    (item,) = history_items(content)
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in item
    assert "<img" not in item


def test_session_page_queries_do_not_grow_with_the_history(
    client, agent_user, qa_user, django_assert_max_num_queries
):
    session = ChatSessionFactory()
    qa_services.qa_mark_issue(session=session, by=qa_user, note="first")
    services.session_archive(session=session, by=agent_user)
    client.force_login(agent_user)
    url = page_url(session)
    client.get(url)
    with django_assert_max_num_queries(10) as few:
        assert client.get(url).status_code == 200
    for i in range(10):
        services.session_unarchive(session=session, by=qa_user if i % 2 else agent_user)
        services.session_archive(session=session, by=agent_user)
        qa_services.qa_note_save(session=session, by=qa_user, note=f"note {i}")
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = client.get(url)
    assert len(history_items(response.content.decode())) == 2 + 30
    assert len(many.captured_queries) == len(few.captured_queries)
