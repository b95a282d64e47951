"""Schemathesis against the running app (issue 11, #20): the schema served at /api/schema/ by a
real server (pytest-django's live_server, a thread answering on a loopback port), every
documented operation of the widget API, the automation error API, the ingest API and the staff
API.

Two phases, each bounded so the whole file stays within CI's time budget (about a minute):
- per operation, a fixed number of generated requests (examples phase plus coverage of the
  schema's edges: boundaries, missing and wrong-typed values);
- stateful: sequences of calls that chain responses into the next request through the links
  schemathesis infers (a started widget session's id into its messages and transcript, a
  listed session's id into the detail and move endpoints).

What must hold for every response: no server error, a status code the schema documents, the
documented content type, and a body that matches its documented schema (formats included).
Real ids and credentials go into the generated requests so the fuzzing gets past
authentication into the handlers.
"""

from __future__ import annotations

import collections
import json

import pytest
import requests
import schemathesis
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import api_token_issue
from sessions_app.services import automation_error_record, lead_capture
from widget.services import widget_session_start
from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"
AUTOMATION_KEY = "fuzz-automation-key"
INGEST_KEY = "fuzz-ingest-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def fuzz_settings(settings):
    # Generated requests come fast from one address: keep the rate limits out of the way (they
    # have their own tests) so the handlers, not the throttle, answer.
    settings.WIDGET_SESSIONS_PER_IP_PER_HOUR = 100_000
    settings.WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = 100_000
    settings.WIDGET_REQUESTS_PER_IP_PER_MINUTE = 100_000
    settings.AUTOMATION_API_KEY = AUTOMATION_KEY
    settings.INGEST_API_KEY = INGEST_KEY


@pytest.fixture
def fuzz_context(live_server, fuzz_settings, make_user):
    """Committed rows the server thread can see (live_server runs on transactional_db)."""
    site = SiteFactory(allowed_origins=[ORIGIN])
    session, token, _ = widget_session_start(site=site, page_url=f"{ORIGIN}/offer")
    lead_capture(session=session, name="Fuzz Lead", email="fuzz@example.com")
    # A stored execution_url that is not a valid URI (rows written before input checks, or by
    # the worker): the output must still match the schema.
    automation_error_record(message="bad url", session=session, execution_url="http://[::1")
    error, _ = automation_error_record(
        message="boom", session=session, execution_url="https://n8n.example.com/e/1"
    )
    admin = make_user("admin", username="fuzz-admin")
    return {
        "site_key": site.public_key,
        "session_id": str(session.public_id),
        "visitor_token": token,
        "error_id": error.pk,
        "staff_token": api_token_issue(user=admin)[1],
    }


def prepare(case, context: dict) -> dict[str, str]:
    """Real ids and credentials for the generated request; returns its headers."""
    path = case.path
    params = case.path_parameters if case.path_parameters is not None else {}
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
    if path.startswith("/api/ingest/"):
        return {"Authorization": f"Bearer {INGEST_KEY}"}
    if "public_id" in params:
        params["public_id"] = context["session_id"]
    if "id" in params:
        params["id"] = context["error_id"]
    return {"Authorization": f"Token {context['staff_token']}"}


def _served_schema() -> dict:
    """The schema as the app serves it at /api/schema/. Loaded at collection (parametrize needs
    the operations then; the schema view touches no database), and checked against the live
    server's own answer below. A plain dict, so schemathesis sends every generated request over
    HTTP to the live server (base_url), not into the WSGI app in-process."""
    response = Client(HTTP_HOST="127.0.0.1").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


SERVED = _served_schema()
# The coverage phase sends every case the schema defines, each enum value included: for the
# operations with a `tz` parameter (the TimeZone enum, ~600 names) that is ~800 requests each,
# minutes in all. They keep the examples and fuzzing phases here; that every documented zone is
# accepted is test_schema_agreement's job.
WITH_TZ = (
    r"^/api/(sessions/|sessions/changes/|stats/|leads/|exports/(sessions|leads)\.(csv|jsonl))$"
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path-regex": WITH_TZ,
                "include-method": "GET",
                "phases": {"coverage": {"enabled": False}},
            }
        ]
    }
)
schema = schemathesis.openapi.from_dict(SERVED, config=CONFIG)


def test_the_fuzzed_schema_is_the_one_the_running_app_serves(live_server):
    served = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=10)
    assert served.status_code == 200
    assert served.json() == SERVED


@schema.parametrize()
@BOUNDED
def test_running_app_answers_every_generated_request_within_its_schema(
    case, fuzz_context, live_server
):
    headers = prepare(case, fuzz_context)
    case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS, timeout=30)


def test_running_app_keeps_its_schema_over_call_sequences(fuzz_context, live_server):
    """The stateful phase: chained calls, each response validated like the single ones.

    Ids come from the links (a started session's id, a listed error's id), not from the
    fixture, so the chain is real; only credentials are added: the staff token, and for a
    widget session the visitor token its start answered with.
    """
    calls: list[str] = []
    chained: collections.Counter = collections.Counter()
    visitor_tokens = {fuzz_context["session_id"]: fuzz_context["visitor_token"]}

    def credentials(case) -> dict[str, str]:
        if case.path.startswith("/api/widget/"):
            headers = {"Origin": ORIGIN}
            session_id = str((case.path_parameters or {}).get("session_id", ""))
            if session_id in visitor_tokens:
                headers["X-Visitor-Token"] = visitor_tokens[session_id]
            if isinstance(case.body, dict) and "site_key" in case.body:
                case.body["site_key"] = fuzz_context["site_key"]
            return headers
        if case.path.startswith("/api/automation/"):
            return {"Authorization": f"Bearer {AUTOMATION_KEY}"}
        if case.path.startswith("/api/ingest/"):
            return {"Authorization": f"Bearer {INGEST_KEY}"}
        return {"Authorization": f"Token {fuzz_context['staff_token']}"}

    class APIWorkflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            calls.append(case.operation.label)
            return {"base_url": live_server.url, "headers": credentials(case), "timeout": 30}

        def after_call(self, response, case):
            if case.operation.label == "POST /api/widget/sessions/" and response.status_code == 201:
                started = response.json()
                visitor_tokens[started["session_id"]] = started["visitor_token"]
            session_id = str((case.path_parameters or {}).get("session_id", ""))
            if session_id in visitor_tokens and session_id != fuzz_context["session_id"]:
                chained[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:
                failures.append(f"{case.operation.label} answered {response.status_code}: {exc}")
                raise

    assert schema.statistic.transitions.total > 0, "no links: the stateful phase tests nothing"
    # The live server's data outlives each example, so when Hypothesis replays a failing chain
    # the links can lead elsewhere and it reports only "inconsistent data generation": name the
    # response that failed first instead.
    failures: list[str] = []
    try:
        APIWorkflow.run(
            settings=hypothesis_settings(BOUNDED, max_examples=30, stateful_step_count=8)
        )
    except Exception:
        if failures:
            pytest.fail("First failing response: " + failures[0][:4000])
        raise
    counts = collections.Counter(calls)
    # Chains, not single calls: a session started in a scenario was read back through its link,
    # and the operation only a link leads to (resolve a listed error) was reached.
    assert chained[("GET /api/widget/sessions/{session_id}/", 200)] > 0, chained
    assert counts["POST /api/automation-errors/{id}/resolve/"] > 0, counts
