"""Staff API of the Leads page: /api/leads/, /api/leads/{id}/ and the leads exports."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from sessions_app.leads import lead_key
from sessions_app.models import Channel, ChatSession, CompletionStatus, QAStatus
from sessions_app.tests.factories import ChatMessageFactory, ChatSessionFactory
from widget.tests.factories import SiteFactory

LIST = reverse("staff-api:leads")
CSV_URL = reverse("staff-api:export-leads-csv")
JSONL_URL = reverse("staff-api:export-leads-jsonl")
ROSA = lead_key("rosa@example.com")


def detail(key: str) -> str:
    return reverse("staff-api:lead", args=[key])


@pytest.fixture
def people(db):
    now = timezone.now()
    acme = SiteFactory(name="Acme")
    older = ChatSessionFactory(
        site=acme,
        started_at=now - timedelta(days=3),
        lead_name='=HYPERLINK("http://evil")',
        lead_email="rosa@example.com",
        lead_phone="+1 555",
        completion_status=CompletionStatus.COMPLETE,
        qa_status=QAStatus.PASSED,
    )
    newer = ChatSessionFactory(
        site=acme,
        channel=Channel.MESSENGER,
        started_at=now - timedelta(days=1),
        lead_name="Rosa Lopez",
        lead_email="Rosa@example.com",
        completion_status=CompletionStatus.COMPLETE,
    )
    ChatMessageFactory(session=newer, text="Call me about solar panels")
    sven = ChatSessionFactory(
        started_at=now - timedelta(days=2), lead_name="Sven", lead_email="sven@example.com"
    )
    ChatSessionFactory()  # no lead: nobody
    return {"older": older, "newer": newer, "sven": sven, "acme": acme}


@pytest.mark.parametrize("role", ["agent", "qa", "admin"])
def test_every_dashboard_role_reads_leads(api, make_user, people, role):
    response = api(make_user(role)).get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    rosa = body["results"][0]
    assert rosa["id"] == ROSA
    assert rosa["conversations"] == 2
    assert rosa["name"] == "Rosa Lopez"
    assert rosa["phone"] == "+1 555"
    assert rosa["channels"] == ["messenger", "web"]
    assert rosa["sites"] == [{"id": people["acme"].pk, "name": "Acme"}]
    assert rosa["latest"]["id"] == str(people["newer"].public_id)
    assert rosa["latest"]["completion_status"] == "complete"
    assert rosa["latest"]["qa_status"] == "unchecked"
    assert rosa["latest"]["delivery_state"] == "none"


def test_anonymous_and_roleless_users_are_refused(api, no_role_user, people):
    for url in (LIST, detail(ROSA), CSV_URL):
        assert api().get(url).status_code == 401
        refused = api(no_role_user).get(url)
        assert refused.status_code == 403
        assert refused.json()["error"]


def test_filters_search_sort_and_pages(api, agent_user, people):
    client = api(agent_user)

    def names(**query):
        response = client.get(LIST, query)
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names(q="solar panels") == ["Rosa Lopez"]
    assert names(q="solar sven") == []
    assert names(channel="messenger") == ["Rosa Lopez"]
    assert names(site=people["acme"].pk) == ["Rosa Lopez"]
    assert names(qa_status="passed") == ["Rosa Lopez"]
    assert names(ordering="first_seen") == ["Rosa Lopez", "Sven"]
    assert names(ordering="-first_seen") == ["Sven", "Rosa Lopez"]
    assert names(ordering="-conversations") == ["Rosa Lopez", "Sven"]
    today = timezone.now().date()
    assert names(date_from=str(today - timedelta(days=2)), date_to=str(today)) == [
        "Rosa Lopez",
        "Sven",
    ]
    page = client.get(LIST, {"page": 2, "page_size": 1}).json()
    assert (page["count"], page["num_pages"], len(page["results"])) == (2, 2, 1)
    assert page["results"][0]["name"] == "Sven"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"ordering": "lead_key"}, "ordering"),
        ({"ordering": "-started_at"}, "ordering"),
        ({"channel": "fax"}, "channel"),
        ({"qa_status": "great"}, "qa_status"),
        ({"site": "acme"}, "site"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_from"),
        ({"q": "a\x00b"}, "q"),
        ({"tz": "Moon/Base"}, "tz"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_parameter(api, agent_user, query, field):
    for url in (LIST, CSV_URL):
        response = api(agent_user).get(url, query)
        assert response.status_code == 400, (url, query)
        body = response.json()
        assert body["error"].startswith(f"{field}:")
        assert field in body["fields"]


@pytest.mark.parametrize(
    ("query", "field"), [({"page": "0"}, "page"), ({"page_size": "1000"}, "page_size")]
)
def test_bad_page_values_are_a_400(api, agent_user, query, field):
    for url in (LIST, detail(ROSA)):
        response = api(agent_user).get(url, query)
        assert response.status_code == 400
        assert response.json()["error"].startswith(f"{field}:")


def test_trash_is_not_a_leads_filter(api, agent_user, people):
    # Ignored like any unknown parameter: the list is the same as without it.
    assert api(agent_user).get(LIST, {"trash": "true"}).json()["count"] == 2


def test_lead_detail_lists_every_conversation_newest_first(api, qa_user, people):
    response = api(qa_user).get(detail(ROSA))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == ROSA and body["conversations"] == 2
    assert [row["id"] for row in body["sessions"]["results"]] == [
        str(people["newer"].public_id),
        str(people["older"].public_id),
    ]
    assert body["sessions"]["count"] == 2
    paged = api(qa_user).get(detail(ROSA), {"page_size": 1, "page": 2}).json()
    assert [row["id"] for row in paged["sessions"]["results"]] == [str(people["older"].public_id)]


def test_lead_detail_of_no_one_or_a_malformed_id_is_a_json_404(api, agent_user, people):
    client = api(agent_user)
    for url in (
        detail(lead_key("nobody@example.com")),
        "/api/leads/rosa@example.com/",
        "/api/leads/" + "A" * 64 + "/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]


def test_lead_in_the_trash_only_is_gone(api, agent_user, people):
    ChatSession.objects.filter(lead_key=ROSA).update(deleted_at=timezone.now())
    assert api(agent_user).get(detail(ROSA)).status_code == 404
    assert [r["name"] for r in api(agent_user).get(LIST).json()["results"]] == ["Sven"]


def test_csv_export_one_row_per_person_formula_safe(api, agent_user, people):
    response = api(agent_user).get(CSV_URL, {"ordering": "email"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "leadchat-leads-" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [ROSA, lead_key("sven@example.com")]
    assert rows[0]["conversations"] == "2"
    assert rows[0]["channels"] == "messenger, web"
    assert rows[0]["sites"] == "Acme"
    assert rows[0]["phone"] == "'+1 555"  # formula start neutralised, as in sessions exports
    assert rows[0]["latest_session"] == str(people["newer"].public_id)


def test_csv_export_neutralises_a_formula_in_the_latest_name(api, agent_user, people):
    ChatSession.objects.filter(pk=people["newer"].pk).update(lead_name="")
    text = b"".join(api(agent_user).get(CSV_URL, {"q": "rosa"}).streaming_content).decode()
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["name"] == '\'=HYPERLINK("http://evil")'


def test_jsonl_export_matches_the_list_filters(api, agent_user, people):
    response = api(agent_user).get(JSONL_URL, {"channel": "messenger"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [ROSA]
    assert rows[0]["channels"] == ["messenger", "web"]
    assert rows[0]["conversations"] == 2
    assert rows[0]["phone"] == "+1 555"  # verbatim in JSON


def test_export_needs_the_export_permission(api, make_user, people):
    user = make_user("agent", username="no-export")
    export = Permission.objects.get(codename="export_chatsession")
    for group in user.groups.all():
        group.permissions.remove(export)
    assert api(user).get(CSV_URL).status_code == 403
    assert api(user).get(LIST).status_code == 200


def test_list_query_count_is_flat(api, agent_user, django_assert_max_num_queries):
    client = api(agent_user)
    for i in range(3):
        ChatSessionFactory(lead_email=f"p{i}@example.com", lead_name=f"P{i}")
    client.get(LIST)
    with django_assert_max_num_queries(8) as small:
        assert len(client.get(LIST).json()["results"]) == 3
    for i in range(40):
        ChatSessionFactory(lead_email=f"p{i}@example.com", lead_name=f"P{i}")
    with django_assert_max_num_queries(8) as large:
        assert len(client.get(LIST, {"page_size": 50}).json()["results"]) == 40
    assert len(large.captured_queries) == len(small.captured_queries)


def test_schema_documents_the_leads_endpoints(client):
    import yaml

    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    assert set(paths["/api/leads/"]["get"]["responses"]) == {"200", "400", "401", "403", "414"}
    assert set(paths["/api/leads/{lead_id}/"]["get"]["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "414",
    }
    for fmt, media in (("csv", "text/csv"), ("jsonl", "application/jsonl")):
        operation = paths[f"/api/exports/leads.{fmt}"]["get"]
        assert operation["operationId"] == f"leads_export_{fmt}"
        assert media in operation["responses"]["200"]["content"]
    names = {p["name"] for p in paths["/api/leads/"]["get"]["parameters"]}
    assert {"q", "site", "channel", "qa_status", "date_from", "ordering", "page"} <= names
    assert "trash" not in names
