"""Fixtures of the QA console tests."""

import pytest
from django.test import Client

from accounts.tests.factories import TEST_PASSWORD
from sessions_app.models import MessageRole
from sessions_app.services import lead_capture, message_add, session_start
from widget.tests.factories import SiteFactory


@pytest.fixture
def site(db):
    return SiteFactory(name="Spring offer")


@pytest.fixture
def make_conversation(site):
    """make_conversation(name=..., email=..., visitor=[...]) -> a session built through services."""

    def make(
        *,
        name: str | None = "Vera Visitor",
        email: str | None = "vera@example.com",
        visitor: tuple[str, ...] = ("I need a quote for 20 seats",),
        page_url: str = "https://landing.example.com/offer",
        referrer: str = "https://www.google.com/",
    ):
        session, _token = session_start(
            site=site,
            page_url=page_url,
            referrer=referrer,
            utm={"utm_source": "newsletter"},
            greeting="Hi! How can we help?",
        )
        for text in visitor:
            message_add(session=session, role=MessageRole.VISITOR, text=text)
            message_add(
                session=session,
                role=MessageRole.AI,
                text=f"Thanks! About: {text}",
                metadata={"backend": "scripted", "model": "rules-v1", "latency_ms": 42},
            )
        if name or email:
            lead_capture(session=session, name=name, email=email)
        session.refresh_from_db()
        return session

    return make


def login(client: Client, user) -> Client:
    assert client.login(username=user.username, password=TEST_PASSWORD)
    return client


@pytest.fixture
def qa_client(client, qa_user):
    return login(client, qa_user)


@pytest.fixture
def admin_client_role(client, admin_role_user):
    return login(client, admin_role_user)


@pytest.fixture
def issue_category(db) -> dict[str, str]:
    """What the QA panel posts with an issue: a failure category (an issue needs one)."""
    from qa.models import FailureCategory

    # Seeded by qa 0004, but a transactional (browser) test that ran before flushed it.
    category, _ = FailureCategory.objects.get_or_create(name="Hallucination")
    return {"scorecard": "1", "category": str(category.pk)}
