import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from qa import services
from qa.export import COLUMNS
from qa.tests.conftest import login
from sessions_app.models import QAStatus
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")
EXPORT = reverse("admin:sessions_app_chatsession_export")


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="qa-results-')
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    return rows


def test_export_of_selected_sessions_holds_their_qa_results(
    client, qa_user, admin_role_user, make_conversation
):
    reviewed = make_conversation(name="Rita Lead", email="rita@example.com")
    services.qa_mark_issue(session=reviewed, by=qa_user, note="Quoted the wrong plan")
    services.qa_mark_fixed(session=reviewed, by=admin_role_user, feedback="Plan table updated")
    untouched = make_conversation(name="Not Selected")

    login(client, qa_user)
    response = client.post(
        CHANGELIST + "?qa_status=all",
        {"action": "export_csv", ACTION_CHECKBOX_NAME: [reviewed.pk], "index": 0},
    )
    rows = read_csv(response)
    assert len(rows) == 1
    row = rows[0]
    reviewed.refresh_from_db()
    assert row["session_id"] == str(reviewed.public_id)
    assert (row["lead_name"], row["lead_email"]) == ("Rita Lead", "rita@example.com")
    assert row["site"] == "Spring offer"
    assert (row["completion_status"], row["archive_status"]) == ("complete", "active")
    assert (row["qa_status"], row["qa_status_by"]) == ("fixed", admin_role_user.username)
    assert (row["qa_notes"], row["qa_notes_by"]) == ("Quoted the wrong plan", qa_user.username)
    assert (row["dev_feedback"], row["dev_feedback_by"]) == (
        "Plan table updated",
        admin_role_user.username,
    )
    assert row["qa_status_at"] == reviewed.qa_status_at.isoformat()
    assert row["qa_notes_at"] == reviewed.qa_notes_at.isoformat()
    assert row["message_count"] == str(reviewed.message_count)
    assert row["console_url"].endswith(
        reverse("admin:sessions_app_chatsession_change", args=[reviewed.pk])
    )
    assert untouched.lead_name not in {r["lead_name"] for r in rows}


def test_export_of_the_filtered_list_follows_the_changelist_filters(qa_client, qa_user):
    passed = ChatSessionFactory(lead_name="Passed One")
    services.qa_mark_passed(session=passed, by=qa_user)
    unchecked = ChatSessionFactory(lead_name="Still Unchecked")

    rows = read_csv(qa_client.get(EXPORT, {"qa_status": "passed", "p": "3", "o": "1"}))
    assert [r["lead_name"] for r in rows] == ["Passed One"]
    assert rows[0]["qa_status_by"] == qa_user.username

    # No filter in the URL: the same default as the queue (unchecked, active).
    rows = read_csv(qa_client.get(EXPORT))
    assert [r["lead_name"] for r in rows] == [unchecked.lead_name]

    rows = read_csv(qa_client.get(EXPORT, {"qa_status": "all", "q": "passed"}))
    assert [r["lead_name"] for r in rows] == ["Passed One"]


def test_changelist_links_the_filtered_export(qa_client):
    html = qa_client.get(CHANGELIST, {"qa_status": "issue"}).content.decode()
    assert f'href="{EXPORT}?qa_status=issue"' in html


def test_export_header_and_formula_cells_are_neutralised(qa_client):
    ChatSessionFactory(lead_name='=HYPERLINK("http://evil")', qa_notes="+1 great", lead_phone="-5")
    body = b"".join(qa_client.get(EXPORT).streaming_content).decode()
    reader = csv.reader(io.StringIO(body))
    assert next(reader) == COLUMNS
    row = dict(zip(COLUMNS, next(reader), strict=True))
    assert row["lead_name"] == '\'=HYPERLINK("http://evil")'
    assert row["qa_notes"] == "'+1 great"
    assert row["lead_phone"] == "'-5"


def test_export_needs_the_export_permission(client, make_user):
    user = make_user("qa", username="no-export")
    user.groups.clear()
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="sessions_app",
            codename__in=["view_chatsession", "change_chatsession", "review_chatsession"],
        )
    )
    login(client, user)
    assert client.get(EXPORT).status_code == 403
    response = client.get(CHANGELIST)
    assert "export_csv" not in dict(response.context["action_form"].fields["action"].choices)
    assert EXPORT not in response.content.decode()


def test_export_streams_from_an_iterator(qa_client, django_assert_max_num_queries):
    for _ in range(30):
        ChatSessionFactory(qa_status=QAStatus.UNCHECKED)
    response = qa_client.get(EXPORT)
    with django_assert_max_num_queries(3):  # one chunked select, not one per row
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 31


def test_qa_export_quotes_every_cell_and_neutralises_every_part(qa_client):
    from leadchat.tests.csvchecks import INJECTIONS, assert_every_cell_quoted

    typed = {field: value for field, (value, _) in INJECTIONS.items() if field in COLUMNS}
    assert set(typed) == {"lead_name", "qa_notes", "dev_feedback", "lead_phone"}
    ChatSessionFactory(**typed)
    body = b"".join(qa_client.get(EXPORT).streaming_content).decode()
    assert_every_cell_quoted(body)
    row = next(csv.DictReader(io.StringIO(body, newline="")))
    assert {field: row[field] for field in typed} == {
        field: INJECTIONS[field][1] for field in typed
    }
