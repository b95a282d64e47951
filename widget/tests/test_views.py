"""The embed script, the widget page (CSP, framing, size budget) and the demo page."""

import gzip
import re
from html import escape as html_escape

import pytest
from django.contrib.staticfiles import finders

from widget.demo import DEMO_SITE_KEY, seed_demo
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

EMBED_BUDGET = 3 * 1024
WIDGET_PAGE_BUDGET = 30 * 1024


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def test_embed_script_is_served_compressed_and_cacheable(client):
    response = client.get("/widget/embed.js", HTTP_ACCEPT_ENCODING="gzip, br")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Content-Encoding"] == "gzip"
    assert "max-age" in response["Cache-Control"]
    assert b"data-site" in gzip.decompress(response.content)


def test_embed_script_is_within_3kb_gzipped(client):
    response = client.get("/widget/embed.js", HTTP_ACCEPT_ENCODING="gzip")

    assert len(response.content) <= EMBED_BUDGET, f"{len(response.content)} bytes gzipped"


def test_embed_script_defines_no_globals():
    source = open(finders.find("widget/embed.js")).read()  # noqa: SIM115

    body = re.sub(r"/\*.*?\*/", "", source, flags=re.S).strip()
    assert body.startswith("(function () {") and body.endswith("})();")


def test_widget_page_loads_within_30kb_gzipped(client):
    SiteFactory(public_key="sized", allowed_origins=["https://a.example"])
    page = client.get("/widget/sized/")
    html = page.content
    assets = re.findall(rb'(?:src|href)="(/static/[^"]+)"', html)

    assert len(assets) >= 2  # the stylesheet and the script
    total = gz(html)
    for asset in assets:
        path = finders.find(asset.decode().removeprefix("/static/"))
        assert path, asset
        total += gz(open(path, "rb").read())  # noqa: SIM115
    assert total <= WIDGET_PAGE_BUDGET, f"{total} bytes gzipped"
    # Nothing else: no fonts, images or third-party scripts before the visitor types.
    assert not re.search(rb'src="https?://', html)


def test_widget_page_csp_allows_only_the_sites_origins_to_frame_it(client):
    SiteFactory(public_key="framed", allowed_origins=["https://a.example", "http://b.test:8080"])

    response = client.get("/widget/framed/")

    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors https://a.example http://b.test:8080" in csp
    assert "script-src 'self'" in csp
    assert "X-Frame-Options" not in response


def test_widget_page_with_no_origins_may_not_be_framed(client):
    SiteFactory(public_key="nowhere", allowed_origins=[])

    response = client.get("/widget/nowhere/")

    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_widget_page_csp_ignores_malformed_origins(client):
    SiteFactory(
        public_key="inject",
        allowed_origins=["https://ok.example", "https://x.example; script-src *", "*"],
    )

    csp = client.get("/widget/inject/")["Content-Security-Policy"]

    assert csp.endswith("frame-ancestors https://ok.example")
    assert "script-src *" not in csp


def test_widget_page_renders_site_settings_as_data_not_markup(client):
    SiteFactory(
        public_key="xss",
        name='<img src=x onerror="alert(1)">',
        greeting="</script><script>alert(1)</script>",
        allowed_origins=["https://a.example"],
    )

    html = client.get("/widget/xss/").content.decode()

    assert "<img src=x" not in html
    assert "</script><script>alert(1)" not in html
    assert "&lt;img src=x" in html


@pytest.mark.parametrize(
    ("key", "status", "why"),
    [
        ("missing", 404, 'the site key "missing" is unknown'),
        ("inactive", 403, 'the site "Shop" is switched off'),
    ],
)
def test_unknown_or_inactive_site_page_is_a_styled_unavailable_page(client, key, status, why):
    SiteFactory(public_key="inactive", name="Shop", is_active=False)

    response = client.get(f"/widget/{key}/")

    html = response.content.decode()
    assert response.status_code == status
    assert "This chat is not available right now" in html
    assert html_escape(why) in html  # for the site owner, under a "For the site owner" disclosure
    # Styled by its own stylesheet (allowed by its CSP), and framable anywhere: it shows nothing
    # of the site, so a wrongly placed frame shows it instead of the browser's error page.
    assert 'href="/static/widget/unavailable.css"' in html
    csp = response["Content-Security-Policy"]
    assert "style-src 'self'" in csp and "frame-ancestors *" in csp
    assert "script-src" not in csp  # default-src 'none': no script runs there
    assert finders.find("widget/unavailable.css")


def test_frame_placed_on_an_origin_not_allowed_gets_the_unavailable_page(client):
    SiteFactory(public_key="framed", name="Shop", allowed_origins=["https://shop.example"])
    frame = {"HTTP_SEC_FETCH_DEST": "iframe"}

    foreign = client.get("/widget/framed/", HTTP_REFERER="https://other.example/page", **frame)
    allowed = client.get("/widget/framed/", HTTP_REFERER="https://shop.example/page", **frame)
    # No Referer (a no-referrer policy): the page as always, and the browser's CSP decides.
    unknown = client.get("/widget/framed/", **frame)

    assert foreign.status_code == 403
    assert (
        "this page&#x27;s origin https://other.example is not in the allowed origins of site "
        "&quot;Shop&quot;" in foreign.content.decode()
    )
    assert allowed.status_code == unknown.status_code == 200
    assert "frame-ancestors https://shop.example" in allowed["Content-Security-Policy"]
    assert "frame-ancestors https://shop.example" in unknown["Content-Security-Policy"]


def test_widget_page_offers_the_greetings_quick_replies_before_any_session(client):
    SiteFactory(public_key="quick", agent_config={"quick_replies": ["Pricing", "Demo"]})

    response = client.get("/widget/quick/")

    assert response.context["config"]["quickReplies"] == ["Pricing", "Demo"]
    assert response.context["config"]["openings"] == "/api/widget/openings/"


def test_other_pages_keep_the_default_deny_framing(client):
    response = client.get("/demo/")

    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_demo_page_embeds_the_demo_site_with_one_line(client, settings):
    seed_demo(sessions=1)

    response = client.get("/demo/", HTTP_HOST="127.0.0.1:8000")

    html = response.content.decode()
    assert response.status_code == 200
    assert (
        f'<script src="http://127.0.0.1:8000/widget/embed.js" data-site="{DEMO_SITE_KEY}" async>'
        in html
    )
    assert 'role="alert"' not in html


def test_demo_page_explains_a_missing_site_or_origin(client):
    assert "seed_demo" in client.get("/demo/").content.decode()

    seed_demo(sessions=1)
    html = client.get("/demo/", HTTP_HOST="localhost").content.decode()
    assert "not in the demo site&#x27;s allowed origins" in html
