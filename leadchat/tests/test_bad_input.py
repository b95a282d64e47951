"""Issue 11 point 16: input that used to end in a 500 is a 400 naming the field (or a one-line
command error with a non-zero exit), on every API, the admin's export and the commands.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from sessions_app.models import AutomationError, ChatSession
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://landing.example.com"
AUTOMATION_KEY = "automation-key-for-bad-input-tests"
DEEP = "[" * 6000 + "]" * 6000  # 12 KB


def assert_400_naming(response, *fragments: str) -> None:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    for fragment in fragments:
        assert fragment in error, error


# --- widget API (anonymous) -------------------------------------------------------------------


@pytest.fixture
def widget_session(client):
    site = SiteFactory(allowed_origins=[ORIGIN])
    started = client.post(
        "/api/widget/sessions/",
        {"site_key": site.public_key, "page_url": f"{ORIGIN}/"},
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    ).json()
    return site, started["session_id"], started["visitor_token"]


@pytest.mark.parametrize(
    "body",
    [DEEP, '{"text": ' + DEEP + "}", '{"a": ' * 3000 + "1" + "}" * 3000],
    ids=["array", "in-a-field", "objects"],
)
def test_deeply_nested_json_to_the_widget_is_400(client, widget_session, body):
    _site, session_id, token = widget_session
    for url, headers in [
        ("/api/widget/sessions/", {}),
        (f"/api/widget/sessions/{session_id}/messages/", {"HTTP_X_VISITOR_TOKEN": token}),
    ]:
        response = client.post(
            url, body, content_type="application/json", HTTP_ORIGIN=ORIGIN, **headers
        )
        assert_400_naming(response, "nested deeper than")


def test_lone_surrogate_in_a_widget_message_is_400_naming_the_field(client, widget_session):
    _site, session_id, token = widget_session
    response = client.post(
        f"/api/widget/sessions/{session_id}/messages/",
        '{"text": "hi \\ud800 there"}',
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
        HTTP_X_VISITOR_TOKEN=token,
    )
    assert_400_naming(response, "text", "surrogate")


# --- automation error API ---------------------------------------------------------------------


def automation_post(body: str):
    return Client().post(
        "/api/automation/errors/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {AUTOMATION_KEY}",
    )


@pytest.fixture
def automation_key(settings):
    settings.AUTOMATION_API_KEY = AUTOMATION_KEY


@pytest.mark.parametrize(
    ("details", "fragments"),
    [
        ('{"stack": "Error\\u0000at node"}', ["details.stack", "NUL"]),
        ('{"stack": "Error \\udc00"}', ["details.stack", "surrogate"]),
        ('{"k\\ud83d": 1}', ["details.k\\ud83d", "surrogate"]),
        ('{"nested": ' + DEEP + "}", ["nested deeper than"]),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", ["details.a[0]", "nested deeper than 32"]),
    ],
    ids=["nul", "lone-surrogate", "surrogate-in-key", "6000-deep", "40-deep"],
)
def test_bad_details_are_400_naming_the_field_and_nothing_is_stored(
    automation_key, details, fragments
):
    response = automation_post('{"message": "boom", "details": ' + details + "}")
    assert_400_naming(response, *fragments)
    assert not AutomationError.objects.exists()


def test_nul_in_the_message_is_400(automation_key):
    assert_400_naming(automation_post('{"message": "bo\\u0000om"}'), "message")


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" + "0" * 400 + ".0"])
def test_a_number_too_large_for_a_float_is_400_not_a_500(automation_key, number):
    """Python reads it as infinity, which no JSON column stores: it used to be a 500."""
    response = automation_post('{"message": "boom", "details": {"n": ' + number + "}}")
    assert_400_naming(response, "details.n", "too large")
    assert not AutomationError.objects.exists()


def test_a_huge_integer_is_still_taken(automation_key):
    # An integer has no infinity: Python keeps it exact and the JSON column stores it.
    response = automation_post('{"message": "boom", "details": {"n": 1' + "0" * 400 + "}}")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("url", ["http://[::1", "https://[v1.x/", "http://[zz]/"])
def test_an_execution_url_that_is_no_url_at_all_is_a_400_naming_the_field(automation_key, url):
    response = automation_post(json.dumps({"message": "boom", "execution_url": url}))
    assert response.status_code == 400, response.content
    assert "execution_url" in response.json()["fields"]
    assert not AutomationError.objects.exists()


def test_a_well_formed_url_of_another_scheme_keeps_the_report_without_the_link(automation_key):
    """Only http(s) links are stored (the console renders them as links); the report itself is
    never refused for that (README), and `warnings` says so."""
    response = automation_post(json.dumps({"message": "boom", "execution_url": "javascript:x"}))
    assert response.status_code == 201, response.content
    assert "execution_url" in response.json()["warnings"][0]
    assert AutomationError.objects.get().execution_url == ""


# --- staff API dates, exports and the export command ------------------------------------------


STAFF_URLS = [
    "/api/sessions/",
    "/api/sessions/changes/",
    "/api/stats/",
    "/api/exports/sessions.csv",
    "/api/exports/sessions.jsonl",
]


@pytest.mark.parametrize("url", STAFF_URLS)
@pytest.mark.parametrize(
    "params",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "9999-12-31"},
        {"date_from": "0001-01-01", "date_to": "0001-01-02", "tz": "Asia/Tokyo"},
        {"date_to": "9999-12-31", "tz": "Pacific/Kiritimati"},
    ],
    ids=["to-max", "from-max", "from-min-east", "to-max-east"],
)
def test_dates_at_the_ends_of_the_calendar_are_400_naming_the_field(
    client, admin_role_user, url, params
):
    client.force_login(admin_role_user)
    response = client.get(url, params)
    field = "date_from" if "date_from" in params else "date_to"
    assert_400_naming(response, field, "between 1900-01-01 and 9998-12-31")


def test_the_last_allowed_day_still_answers(client, admin_role_user):
    ChatSessionFactory()
    client.force_login(admin_role_user)
    for url in STAFF_URLS:
        params = {"date_from": "9998-12-01", "date_to": "9998-12-31", "tz": "Pacific/Kiritimati"}
        assert client.get(url, params).status_code == 200, url


@pytest.mark.parametrize("option", ["--date-to", "--date-from"])
def test_export_command_refuses_a_date_at_the_end_of_the_calendar(tmp_path, option):
    with pytest.raises(CommandError, match=f"^{option}: Use a day between"):
        call_command("export_sessions", "--output", str(tmp_path / "x.csv"), option, "9999-12-31")


# --- the admin's filtered export --------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"site__id__exact": "abc"}, "site__id__exact"),
        ({"no_such_filter": "1"}, "no_such_filter"),
        ({"qa_status": "all", "started_at__gte": "not-a-date"}, "started_at__gte"),
    ],
)
def test_admin_export_with_a_bad_filter_is_400_naming_it(client, admin_role_user, params, named):
    ChatSessionFactory()
    client.force_login(admin_role_user)
    response = client.get(reverse("admin:sessions_app_chatsession_export"), params)
    assert response.status_code == 400
    assert named in response.content.decode()


def test_admin_export_with_good_filters_still_exports(client, admin_role_user):
    session = ChatSessionFactory(lead_name="Kept Lead")
    client.force_login(admin_role_user)
    response = client.get(
        reverse("admin:sessions_app_chatsession_export"),
        {"qa_status": "all", "site__id__exact": str(session.site_id or "")},
    )
    assert response.status_code == 200
    assert "Kept Lead" in b"".join(response.streaming_content).decode()


# --- close_idle_sessions ----------------------------------------------------------------------


@pytest.mark.parametrize("minutes", ["99999999999999", "0", "-5", "52560001"])
def test_close_idle_sessions_refuses_out_of_range_minutes(minutes):
    ChatSessionFactory()
    with pytest.raises(
        CommandError, match=r"^--minutes must be a positive number of minutes, at most 52560000 "
    ):
        call_command("close_idle_sessions", "--minutes", minutes)
    assert ChatSession.objects.filter(completion_status="in_progress").count() == 1


def test_close_idle_sessions_command_error_is_one_line_and_non_zero():
    done = subprocess.run(
        [sys.executable, "manage.py", "close_idle_sessions", "--minutes", "99999999999999"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "leadchat.settings_test"},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "CommandError: --minutes must be a positive number of minutes, at most 52560000 "
        "(100 years)."
    ]
