"""Cache-Control: no-store on the dashboard and the staff API (issue 11, #19): lead data must
not stay in a browser's or a proxy's cache. Public assets keep their cache lifetimes."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from sessions_app.tests.factories import AutomationErrorFactory, ChatSessionFactory

pytestmark = pytest.mark.django_db


def assert_no_store(response) -> None:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert "no-store" in directives, (response.status_code, response.get("Cache-Control"))
    assert "public" not in directives


def dashboard_pages(session) -> list[str]:
    return [
        reverse("dashboard:overview"),
        reverse("dashboard:sessions"),
        reverse("dashboard:session", args=[session.public_id]),
        reverse("dashboard:trash"),
        reverse("dashboard:errors"),
    ]


def staff_api_urls(session, error) -> list[str]:
    return [
        reverse("staff-api:sessions"),
        reverse("staff-api:session", args=[session.public_id]),
        reverse("staff-api:sessions-changes"),
        reverse("staff-api:stats"),
        reverse("staff-api:errors"),
        reverse("staff-api:export-csv"),
        reverse("staff-api:export-jsonl"),
    ]


def test_dashboard_pages_are_no_store(client, agent_user):
    session = ChatSessionFactory()
    client.force_login(agent_user)
    for url in dashboard_pages(session):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_store(response)


def test_dashboard_redirect_to_sign_in_is_no_store(client):
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302
    assert_no_store(response)


def test_staff_api_answers_are_no_store_with_a_token_and_with_the_session(agent_user):
    session = ChatSessionFactory()
    error = AutomationErrorFactory(session=session)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=agent_user)[1]}")
    by_session = APIClient()
    by_session.force_login(agent_user)
    for client in (by_token, by_session):
        for url in staff_api_urls(session, error):
            response = client.get(url)
            assert response.status_code == 200, url
            assert_no_store(response)
        write = client.post(reverse("staff-api:session-move", args=[session.public_id, "archive"]))
        assert write.status_code in (200, 409)
        assert_no_store(write)


def test_staff_api_errors_are_no_store_too(agent_user):
    assert_no_store(APIClient().get(reverse("staff-api:sessions")))  # 401
    client = APIClient()
    client.force_login(agent_user)
    assert_no_store(client.get(reverse("staff-api:sessions"), {"page": "0"}))  # 400


def test_public_assets_keep_their_cache_lifetimes(client):
    embed = client.get(reverse("widget:embed-js"))
    assert embed.status_code == 200
    assert embed["Cache-Control"] == "public, max-age=300"
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200
    assert "no-store" not in schema.get("Cache-Control", "")
