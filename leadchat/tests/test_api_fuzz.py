"""Schemathesis against /api/schema/: every documented operation of the public widget API, the
automation error API and the staff API, with a bounded number of generated requests each.

What must hold for every one: no server error, a status code the schema documents, and a body
that matches the documented schema and content type. Real ids and credentials are put into the
generated requests so that the fuzzing reaches past authentication into the handlers.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import api_token_issue
from leadchat.wsgi import application
from sessions_app.services import automation_error_record, lead_capture
from widget.services import widget_session_start
from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"
AUTOMATION_KEY = "fuzz-automation-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_test_connection():
    """Requests run in-process inside the test's transaction; as Django's test Client does, keep
    the end of a request from closing the connection that holds it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def api_settings(settings, keep_test_connection):
    # Generated requests come fast from one address: keep the rate limits out of the way (they
    # have their own tests) so the handlers, not the throttle, answer.
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 100_000
    settings.WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = 100_000
    settings.WIDGET_REQUESTS_PER_IP_PER_MINUTE = 100_000
    settings.AUTOMATION_API_KEY = AUTOMATION_KEY


@pytest.fixture
def fuzz_context(db, admin_role_user):
    site = SiteFactory(allowed_origins=[ORIGIN])
    session, token, _ = widget_session_start(site=site, page_url=f"{ORIGIN}/offer")
    lead_capture(session=session, name="Fuzz Lead", email="fuzz@example.com")
    error, _ = automation_error_record(message="boom", session=session)
    return {
        "site_key": site.public_key,
        "session_id": str(session.public_id),
        "visitor_token": token,
        "error_id": error.pk,
        "staff_token": api_token_issue(user=admin_role_user)[1],
    }


def prepare(case, context: dict) -> dict[str, str]:
    """Real ids and credentials for the generated request; returns its headers."""
    path = case.path
    params = case.path_parameters or {}
    if path.startswith("/api/widget/"):
        headers = {"Origin": ORIGIN}
        if "session_id" in params:
            params["session_id"] = context["session_id"]
            headers["X-Visitor-Token"] = context["visitor_token"]
        if isinstance(case.body, dict) and "site_key" in case.body:
            case.body["site_key"] = context["site_key"]
        return headers
    if path.startswith("/api/automation/"):
        return {"Authorization": f"Bearer {AUTOMATION_KEY}"}
    if "public_id" in params:
        params["public_id"] = context["session_id"]
    if "id" in params:
        params["id"] = context["error_id"]
    return {"Authorization": f"Token {context['staff_token']}"}


# The schema view needs no database, so the schema loads at collection, in-process (WSGI).
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_generated_request_within_its_schema(case, fuzz_context):
    headers = prepare(case, fuzz_context)
    case.call_and_validate(headers=headers, checks=CHECKS)
