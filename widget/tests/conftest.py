import pytest
from django.core.cache import cache

from widget.tests.factories import SiteFactory

ORIGIN = "https://landing.example.com"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate limits live in the (locmem) cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site(db):
    return SiteFactory(public_key="test-site", allowed_origins=[ORIGIN], name="Acme")


@pytest.fixture
def widget_client(client):
    """The Django test client speaking JSON from the landing page's origin."""

    class WidgetClient:
        def __init__(self):
            self.raw = client

        def start(self, site_key="test-site", origin=ORIGIN, **extra):
            # HTTP_* keywords are request headers; the rest are body fields.
            headers = {k: v for k, v in extra.items() if k.startswith("HTTP_")}
            fields = {k: v for k, v in extra.items() if not k.startswith("HTTP_")}
            body = {"site_key": site_key, "page_url": f"{ORIGIN}/pricing", **fields}
            if origin:
                headers["HTTP_ORIGIN"] = origin
            return client.post(
                "/api/widget/sessions/", body, content_type="application/json", **headers
            )

        def say(self, session_id, token, text, origin=ORIGIN):
            headers = {"HTTP_ORIGIN": origin} if origin else {}
            if token is not None:
                headers["HTTP_X_VISITOR_TOKEN"] = token
            return client.post(
                f"/api/widget/sessions/{session_id}/messages/",
                {"text": text},
                content_type="application/json",
                **headers,
            )

        def transcript(self, session_id, token, origin=ORIGIN):
            headers = {"HTTP_ORIGIN": origin} if origin else {}
            if token is not None:
                headers["HTTP_X_VISITOR_TOKEN"] = token
            return client.get(f"/api/widget/sessions/{session_id}/", **headers)

        def started(self, **kwargs):
            response = self.start(**kwargs)
            assert response.status_code == 201, response.content
            data = response.json()
            return data["session_id"], data["visitor_token"]

    return WidgetClient()
