"""Fixtures of the dashboard and staff API tests."""

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_issue


@pytest.fixture
def api(db):
    """api(user) -> an APIClient signed in as `user` (session auth, like the dashboard)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def token_client(db):
    """token_client(user) -> an APIClient using `Authorization: Token ...` (scripts)."""

    def make(user) -> APIClient:
        client = APIClient()
        _, token = api_token_issue(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client

    return make


@pytest.fixture
def no_role_user(make_user):
    """A signed-in account whose role group was taken away: holds no dashboard permission."""
    user = make_user("agent", username="nobody")
    user.groups.clear()
    return user
