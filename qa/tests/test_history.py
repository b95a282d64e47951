"""The console's History panel (QA and lifecycle moves) and the archive action's history rows."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from qa import services
from sessions_app import services as session_services
from sessions_app.models import ArchiveStatus, LifecycleHistory
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")


def change_url(session) -> str:
    return reverse("admin:sessions_app_chatsession_change", args=[session.pk])


def history_rows(content: str) -> list[str]:
    """The text of each row of the History panel, in page order."""
    panel = content[content.index('id="panel-history"') :]
    body = panel[panel.index("<tbody>") : panel.index("</tbody>")]
    rows = body.split("<tr")[1:]
    return [" ".join(" ".join(row.replace("<td", "\n<td").split("</td>")).split()) for row in rows]


def test_change_view_shows_qa_and_lifecycle_history_newest_first(
    admin_client_role, qa_user, agent_user, admin_role_user
):
    session = ChatSessionFactory()
    services.qa_mark_issue(session=session, by=qa_user, note="Promised a discount")
    session_services.session_archive(session=session, by=agent_user)
    session_services.session_delete(session=session, by=agent_user)
    session_services.session_restore(session=session, by=admin_role_user)
    services.qa_feedback_save(session=session, by=admin_role_user, feedback="Prompt fixed")

    content = admin_client_role.get(change_url(session)).content.decode()
    assert '<a href="#panel-history">History</a>' in content
    rows = history_rows(content)
    expected = [
        # Opening the page claimed it for the admin: a row of its own.
        ("ada-admin", "Review claim", "claimed for review until"),
        ("ada-admin", "Developer feedback", "saved", "Prompt fixed"),
        ("ada-admin", "Trash", "In the trash → Not in the trash"),
        ("alex-agent", "Trash", "Not in the trash → In the trash"),
        ("alex-agent", "Archive status", "Active → Archived"),
        ("quinn-qa", "QA status", "Unchecked → Issue", "Promised a discount"),
    ]
    assert len(rows) == len(expected)
    for row, parts in zip(rows, expected, strict=True):
        for part in parts:
            assert part in row, (part, row)


def test_change_view_history_says_when_there_is_none(client, make_user):
    # A reader who may not review claims nothing by opening the page, so nothing happened yet.
    from django.contrib.auth.models import Permission

    reader = make_user("agent", username="rita-reader")
    reader.is_staff = True
    reader.save(update_fields=["is_staff"])
    reader.user_permissions.add(Permission.objects.get(codename="view_chatsession"))
    client.force_login(reader)
    content = client.get(change_url(ChatSessionFactory())).content.decode()
    assert "No changes yet." in content


def test_opening_the_page_claims_it_and_the_history_says_so(qa_client):
    content = qa_client.get(change_url(ChatSessionFactory())).content.decode()
    rows = history_rows(content)
    assert len(rows) == 1
    assert "quinn-qa" in rows[0] and "claimed for review until" in rows[0]


def test_archive_action_writes_one_row_per_session(admin_client_role, admin_role_user):
    sessions = [ChatSessionFactory() for _ in range(3)]
    already = ChatSessionFactory(archive_status=ArchiveStatus.ARCHIVED)
    response = admin_client_role.post(
        CHANGELIST + "?archive=all&qa_status=all",
        {
            "action": "archive_sessions",
            ACTION_CHECKBOX_NAME: [s.pk for s in [*sessions, already]],
            "index": 0,
        },
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "3 sessions archived." in texts
    assert any(t.startswith("1 session not archived:") for t in texts), texts
    rows = LifecycleHistory.objects.order_by("session_id")
    assert [(r.session_id, r.from_status, r.to_status, r.by) for r in rows] == [
        (s.pk, "active", "archived", admin_role_user) for s in sessions
    ]


def test_change_view_queries_do_not_grow_with_the_history(
    qa_client, qa_user, agent_user, django_assert_max_num_queries
):
    session = ChatSessionFactory()
    services.qa_note_save(session=session, by=qa_user, note="first")
    session_services.session_archive(session=session, by=agent_user)
    qa_client.get(change_url(session))
    # 12 before scorecards, which add at most 6 fixed queries (see qa.scorecards.console).
    with django_assert_max_num_queries(18) as few:
        assert qa_client.get(change_url(session)).status_code == 200
    for i in range(10):
        session_services.session_unarchive(session=session, by=agent_user)
        session_services.session_archive(session=session, by=agent_user)
        services.qa_note_save(session=session, by=qa_user, note=f"note {i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        content = qa_client.get(change_url(session)).content.decode()
    assert len(history_rows(content)) == 2 + 30 + 1  # + the claim of the first opening


def test_history_shows_the_replays_and_the_sampling_decision(
    admin_client_role, qa_user, admin_role_user
):
    from datetime import timedelta

    from django.db.models import F
    from django.utils import timezone

    from qa.models import QAHistory, Replay, SessionSample
    from qa.replay.models import ReplayStatus, ReplayTrigger

    session = ChatSessionFactory()
    now = timezone.now()
    SessionSample.objects.create(
        session=session,
        sampled=True,
        reasons=["keyword:refund", "needs_human"],
        decided_at=now - timedelta(hours=3),
    )
    services.qa_mark_issue(session=session, by=qa_user, note="Wrong refund policy")
    services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Policy in the prompt")
    # Marking fixed queued a replay (qa.replay's receiver); the worker ran it.
    replay = Replay.objects.get(session=session)
    assert replay.trigger == ReplayTrigger.FIXED
    # The story an hour ago, so that the page's own claim (now) comes on top.
    hour = timedelta(hours=1)
    QAHistory.objects.filter(session=session).update(at=F("at") - hour)
    Replay.objects.filter(pk=replay.pk).update(
        requested_at=F("requested_at") - hour,
        status=ReplayStatus.DONE,
        finished_at=now - timedelta(minutes=50),
        visitor_turns=2,
        agent_backend="openai",
        agent_model="m-1",
        agent_config_hash="c0ffee",
    )
    failed = Replay.objects.create(
        session=session,
        trigger=ReplayTrigger.MANUAL,
        requested_by=qa_user,
        requested_at=now - timedelta(minutes=40),
        status=ReplayStatus.FAILED,
        finished_at=now - timedelta(minutes=39),
        reason="n8n webhook could not be reached: connection refused",
    )
    short, failed_short = str(replay.public_id)[:8], str(failed.public_id)[:8]
    rows = history_rows(admin_client_role.get(change_url(session)).content.decode())
    expected = [
        ("ada-admin", "Review claim", "claimed for review until"),
        ("Replay", f"{failed_short} failed", "n8n webhook could not be reached"),
        ("quinn-qa", "Replay", f"{failed_short} asked for"),
        ("Replay", f"{short} done", "2 visitor turns replayed against openai · m-1 · c0ffee"),
        # Queued by the fix itself, in its transaction, a moment after the move's time.
        ("ada-admin", "Replay", f"{short} queued (marked fixed)"),
        ("ada-admin", "QA status", "Issue → Fixed", "Policy in the prompt"),
        ("quinn-qa", "QA status", "Unchecked → Issue", "Wrong refund policy"),
        ("QA sampling", "sampled", "keyword “refund”, asked for a person"),
    ]
    assert len(rows) == len(expected), rows
    for row, parts in zip(rows, expected, strict=True):
        for part in parts:
            assert part in row, (part, row)


def test_history_says_a_session_was_not_sampled(admin_client_role):
    from qa.models import SessionSample

    session = ChatSessionFactory()
    SessionSample.objects.create(session=session, sampled=False, reasons=[], random_percent=20)
    rows = history_rows(admin_client_role.get(change_url(session)).content.decode())
    assert any(
        "QA sampling" in row
        and "not sampled" in row
        and "no rule matched and outside the random 20%" in row
        for row in rows
    ), rows


def test_a_decision_made_from_a_replay_says_so_in_the_history(qa_user, admin_role_user):
    from qa.models import QAHistory

    session = ChatSessionFactory()
    services.qa_mark_issue(session=session, by=qa_user, note="Wrong price")
    services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Price list updated")
    services.qa_mark_passed(session=session, by=qa_user, via="After replay 1a2b3c4d")
    move = QAHistory.objects.filter(session=session).first()
    assert (move.to_status, move.note) == ("passed", "After replay 1a2b3c4d")
    session.refresh_from_db()
    assert session.qa_notes == "Wrong price"  # the QA note is left as it was
