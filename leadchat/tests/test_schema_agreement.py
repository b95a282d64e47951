"""The schema and the behaviour agree on what schemathesis found against the running app
(issue 11, #20). Each finding as its own test; test_api_fuzz.py keeps fuzzing for the rest."""

import json

import jsonschema_rs
import pytest
import requests
from django.urls import reverse
from rest_framework.test import APIClient

from sessions_app.api.params import StatsParams
from sessions_app.models import AutomationError
from sessions_app.tests.factories import AutomationErrorFactory, ChatSessionFactory
from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"


@pytest.fixture
def served_schema(client) -> dict:
    response = client.get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def validator(part: dict):
    """A JSON Schema validator with formats checked, as schemathesis checks responses. (Only
    for parts without OpenAPI's `nullable`, which plain JSON Schema does not know.)"""
    return jsonschema_rs.validator_for(part, validate_formats=True)


@pytest.fixture
def staff(agent_user) -> APIClient:
    client = APIClient()
    client.force_login(agent_user)
    return client


# --- execution_url: a stored value that is not a URI -----------------------------------------

STORED_URLS = {
    # stored -> what the API must output
    "http://[::1": "",
    "javascript:alert(1)": "",
    "not a url": "",
    "http://e.com/%zz": "http://e.com/%25zz",
    "http://e.com/#a#b": "http://e.com/#a%23b",
    "http://e.com/?q=a[b]": "http://e.com/?q=a%5Bb%5D",
    "http://\u00fcnicode.example/\u00e4": "http://%C3%BCnicode.example/%C3%A4",
    "https://n8n.example.com/workflow/7/executions/2315": (
        "https://n8n.example.com/workflow/7/executions/2315"
    ),
    "": "",
}


@pytest.mark.django_db
def test_stored_execution_url_is_output_as_a_uri_or_empty(staff, served_schema):
    session = ChatSessionFactory()
    for stored in STORED_URLS:
        # Written as the column can hold them (bulk_create skips model validation).
        AutomationError.objects.bulk_create(
            [AutomationError(message=f"m {stored}", session=session, execution_url=stored)]
        )
    documented = served_schema["components"]["schemas"]["AutomationError"]["properties"]
    url_validator = validator(documented["execution_url"])
    listed = staff.get(reverse("staff-api:errors"), {"page_size": 50}).json()["results"]
    detail = staff.get(reverse("staff-api:session", args=[session.public_id])).json()
    for rows in (listed, detail["automation_errors"]):
        got = {row["message"][2:]: row["execution_url"] for row in rows}
        assert got == STORED_URLS
        for row in rows:
            url_validator.validate(row["execution_url"])


# --- tz: the schema's set is exactly the accepted set ------------------------------------------


@pytest.mark.django_db
def test_every_documented_time_zone_is_accepted_and_nothing_else(staff, served_schema):
    documented = served_schema["components"]["schemas"]["TimeZone"]["enum"]
    assert "Europe/Paris" in documented and "UTC" in documented and "" in documented
    refused = [tz for tz in documented if not StatsParams(data={"tz": tz}).is_valid()]
    assert refused == []
    # Names of the shape the old pattern documented but that are no zone: not in the enum,
    # and refused with a 400 naming the parameter.
    for name in ["A", "Moon/Base", "Europe/Nowhere"]:
        assert name not in documented
        response = staff.get(reverse("staff-api:stats"), {"tz": name})
        assert response.status_code == 400
        assert response.json()["error"].startswith("tz: Unknown time zone")
    for url in (reverse("staff-api:stats"), reverse("staff-api:sessions")):
        assert staff.get(url, {"tz": "America/Argentina/Buenos_Aires"}).status_code == 200
    params = served_schema["paths"]["/api/sessions/"]["get"]["parameters"]
    tz = next(p for p in params if p["name"] == "tz")
    assert tz["schema"] == {"allOf": [{"$ref": "#/components/schemas/TimeZone"}]}


# --- a page past the last ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_page_past_the_last_is_an_empty_page_as_documented(staff, served_schema):
    ChatSessionFactory.create_batch(3)
    AutomationErrorFactory()
    sessions = staff.get(reverse("staff-api:sessions"), {"page": 7, "page_size": 2})
    assert sessions.status_code == 200
    body = sessions.json()
    assert (body["count"], body["page"], body["num_pages"], body["results"]) == (3, 7, 2, [])
    documented = served_schema["components"]["schemas"]["SessionPage"]["properties"]
    validator(documented["page"]).validate(body["page"])
    errors = staff.get(reverse("staff-api:errors"), {"page": 2})
    assert errors.status_code == 200 and errors.json()["results"] == []
    page = next(
        p
        for p in served_schema["paths"]["/api/sessions/"]["get"]["parameters"]
        if p["name"] == "page"
    )
    assert "past the last" in page["description"]


# --- widget: a number where the schema says string ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [
        ("utm_campaign", 0),
        ("utm_source", 12.5),
        ("utm_medium", True),
        ("page_url", 1),
        ("referrer", ["x"]),
        ("site_key", 7),
    ],
)
def test_widget_session_start_refuses_a_non_string_field(client, field, value):
    SiteFactory(public_key="test-site", allowed_origins=[ORIGIN])
    body = {"site_key": "test-site", "page_url": f"{ORIGIN}/p", field: value}
    response = client.post(
        "/api/widget/sessions/", body, content_type="application/json", HTTP_ORIGIN=ORIGIN
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(f"{field}:")


@pytest.mark.django_db
def test_widget_message_refuses_a_number_as_text(client):
    SiteFactory(public_key="test-site", allowed_origins=[ORIGIN])
    started = client.post(
        "/api/widget/sessions/",
        {"site_key": "test-site"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    response = client.post(
        f"/api/widget/sessions/{started['session_id']}/messages/",
        {"text": 42},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        HTTP_X_VISITOR_TOKEN=started["visitor_token"],
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("text:")


# --- 414 ---------------------------------------------------------------------------------------


def test_every_operation_documents_the_servers_414(served_schema):
    operations = [
        (path, method, operation)
        for path, item in served_schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) > 10
    missing = [(p, m) for p, m, op in operations if "414" not in op["responses"]]
    assert missing == []


@pytest.mark.django_db(transaction=True)
def test_the_running_server_answers_a_too_long_url_with_the_documented_414(live_server):
    response = requests.get(f"{live_server.url}/api/sessions/?q={'x' * 70_000}", timeout=10)
    assert response.status_code == 414
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10).json()
    assert "414" in schema["paths"]["/api/sessions/"]["get"]["responses"]
