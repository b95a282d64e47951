"""Security headers on the main pages: CSP (per-site frame-ancestors on the widget page, 'none'
elsewhere), HSTS in production, nosniff, referrer policy, clickjacking protection."""

import pytest

from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

PAGES = ["/health", "/accounts/login/", "/admin/login/", "/demo/", "/api/docs/"]


def csp_directives(header: str) -> dict[str, str]:
    parts = (part.strip() for part in header.split(";"))
    return {p.split(" ", 1)[0]: [*p.split(" ", 1), ""][1] for p in parts if p}


@pytest.mark.parametrize("path", PAGES)
def test_pages_forbid_framing_and_sniffing(client, path):
    response = client.get(path)
    assert response.status_code < 400, path
    csp = csp_directives(response["Content-Security-Policy"])
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp.get("script-src", csp.get("default-src", ""))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_widget_page_may_be_framed_only_by_the_sites_origins(client):
    site = SiteFactory(allowed_origins=["https://shop.example.com", "https://www.example.org"])
    response = client.get(f"/widget/{site.public_key}/")
    assert response.status_code == 200
    csp = csp_directives(response["Content-Security-Policy"])
    assert set(csp["frame-ancestors"].split()) == {
        "https://shop.example.com",
        "https://www.example.org",
    }
    assert "X-Frame-Options" not in response
    assert response["X-Content-Type-Options"] == "nosniff"


def test_widget_page_of_a_site_without_origins_may_not_be_framed(client):
    site = SiteFactory(allowed_origins=[])
    response = client.get(f"/widget/{site.public_key}/")
    assert csp_directives(response["Content-Security-Policy"])["frame-ancestors"] == "'none'"


def test_hsts_and_https_redirect_in_production(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = True
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    # Load balancers probe /health over plain HTTP: no redirect there.
    assert client.get("/health").status_code == 200


def test_session_and_csrf_cookies_are_secure_and_http_only_in_production(client, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    response = client.get("/accounts/login/", secure=True)
    cookie = response.cookies["csrftoken"]
    assert cookie["secure"]
    assert cookie["samesite"] == "Lax"
