"""POST /api/automation/errors/ for n8n's error workflow."""

import json
from typing import Any

import pytest
from django.test import Client

from sessions_app.models import AutomationError
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

URL = "/api/automation/errors/"
KEY = "automation-key-for-tests-0123456789"


@pytest.fixture(autouse=True)
def api_key(settings):
    settings.AUTOMATION_API_KEY = KEY


def post(body, *, auth: str | None = f"Bearer {KEY}", content_type="application/json", **extra):
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client().post(URL, data=data, content_type=content_type, **headers, **extra)


ERROR = {
    "workflow": "Lead intake",
    "node": "HTTP Request",
    "message": "Request failed with status code 500",
    "execution_id": "2315",
    "execution_url": "https://n8n.example.com/workflow/7/executions/2315",
    "details": {"mode": "trigger", "stack": "Error: ..."},
}


def test_error_is_stored_and_linked_to_its_session():
    session = ChatSessionFactory()
    response = post({**ERROR, "session_id": str(session.public_id)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and body["warnings"] == []
    assert body["session_id"] == str(session.public_id)
    error = AutomationError.objects.get(pk=body["id"])
    assert error.session == session
    assert error.source == AutomationError.Source.N8N
    assert (error.workflow, error.node, error.execution_id) == (
        "Lead intake",
        "HTTP Request",
        "2315",
    )
    assert error.details["mode"] == "trigger"


def test_missing_authorization_is_401_with_a_readable_error():
    response = post(ERROR, auth=None)
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not AutomationError.objects.exists()


@pytest.mark.parametrize(
    "auth", [f"Bearer {KEY}x", "Bearer ", f"Basic {KEY}", KEY, f"Bearer {KEY[:-1]}"]
)
def test_wrong_key_is_403(auth):
    response = post(ERROR, auth=auth)
    assert response.status_code == 403
    assert response.json()["error"] == "Invalid API key."
    assert not AutomationError.objects.exists()


def test_api_is_closed_while_no_key_is_configured(settings):
    settings.AUTOMATION_API_KEY = ""
    response = post(ERROR, auth="Bearer ")
    assert response.status_code == 403
    assert "AUTOMATION_API_KEY" in response.json()["error"]


def test_replayed_execution_is_stored_once_and_answers_200():
    first = post(ERROR)
    replay = post({**ERROR, "message": "the same execution, posted again"})
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["created"] is False
    assert AutomationError.objects.count() == 1
    assert AutomationError.objects.get().message == ERROR["message"]


def test_body_over_64_kb_is_413_and_nothing_is_stored():
    response = post({**ERROR, "details": {"blob": "x" * (64 * 1024)}})
    assert response.status_code == 413
    assert "64 KB" in response.json()["error"]
    assert not AutomationError.objects.exists()


def test_body_just_under_the_cap_is_accepted():
    body = {**ERROR, "details": {"blob": ""}}
    room = 64 * 1024 - len(json.dumps(body))
    body["details"]["blob"] = "x" * room
    assert len(json.dumps(body)) == 64 * 1024
    assert post(body).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"message": "unterminated', "application/json", 400, "JSON parse error"),
        (b"[1, 2]", "application/json", 400, "Expected a dictionary"),
        (b'{"workflow": "x"}', "application/json", 400, "message"),
        (b'{"message": "x", "details": [1]}', "application/json", 400, "details"),
        (b"message=x", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
    ],
)
def test_bad_input_is_a_readable_4xx(body, content_type, status, fragment):
    response = post(body, content_type=content_type)
    assert response.status_code == status, response.content
    assert fragment in response.json()["error"]
    assert not AutomationError.objects.exists()


@pytest.mark.parametrize("session_id", ["6f1c1a8e-4f57-4b8a-9f0a-2d1f7c3b9e10", "not-a-uuid", "12"])
def test_unknown_session_still_stores_the_error_unlinked_with_a_warning(session_id):
    response = post({**ERROR, "session_id": session_id})
    assert response.status_code == 201
    body = response.json()
    assert body["session_id"] is None
    assert len(body["warnings"]) == 1 and "without a link" in body["warnings"][0]
    assert AutomationError.objects.get().session is None


def test_non_http_execution_url_is_dropped_never_stored():
    response = post({**ERROR, "execution_url": "javascript:alert(1)"})
    assert response.status_code == 201
    assert "execution_url" in response.json()["warnings"][0]
    assert AutomationError.objects.get().execution_url == ""


def test_execution_url_without_a_host_is_dropped_never_stored():
    response = post({**ERROR, "execution_url": "https://:5678/workflow/7"})
    assert response.status_code == 201
    assert "execution_url" in response.json()["warnings"][0]
    assert AutomationError.objects.get().execution_url == ""


def test_other_methods_are_refused():
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {KEY}")
    assert response.status_code == 405


def test_openapi_schema_documents_the_endpoint_and_its_errors(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/automation/errors/"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "400", "401", "403", "413"}
    assert operation["security"] == [{"AutomationBearer": []}]
    assert "AutomationBearer" in schema["components"]["securitySchemes"]
