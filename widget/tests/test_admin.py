"""Site admin: create and edit sites, secrets never shown back, embed snippet ready to copy."""

from datetime import date
from decimal import Decimal

import pytest

from widget.models import Site, SiteDailyUsage
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-abcdefghijklmnop1234"


def form_data(**overrides):
    data = {
        "name": "Spring campaign",
        "is_active": "on",
        "origins_text": "https://www.example.com\nhttp://localhost:3000/",
        "greeting": "Hello!",
        "theme_color": "#112233",
        # The widget's look (issue 16) as the add form renders it.
        "language": "en",
        "theme": "auto",
        "agent_backend": "scripted",
        "agent_config": "{}",
        "new_secret": "",
        # The budget fields as the add form renders them (the model's defaults).
        "ai_session_token_budget": "20000",
        "ai_daily_token_budget": "500000",
        "ai_session_message_budget": "40",
        "ai_daily_message_budget": "2000",
        "ai_price_per_1k_tokens": "0",
    }
    data.update(overrides)
    return data


def test_admin_creates_site_with_generated_key(client, admin_role_user):
    client.force_login(admin_role_user)

    response = client.post("/admin/widget/site/add/", form_data())

    assert response.status_code == 302, response.context["adminform"].form.errors
    site = Site.objects.get(name="Spring campaign")
    assert len(site.public_key) >= 16
    assert site.allowed_origins == ["https://www.example.com", "http://localhost:3000"]
    assert site.theme_color == "#112233"


@pytest.mark.parametrize(
    "origin",
    ["https://x.example/path", "ftp://x.example", "https://x.example; script-src *", "*"],
)
def test_admin_refuses_bad_origins(client, admin_role_user, origin):
    client.force_login(admin_role_user)

    response = client.post("/admin/widget/site/add/", form_data(origins_text=origin))

    assert response.status_code == 200
    assert "is not an origin" in str(response.context["adminform"].form.errors)
    assert not Site.objects.exists()


@pytest.mark.parametrize(
    ("backend", "config", "message"),
    [
        ("n8n", "{}", "webhook_url"),
        ("openai", '{"base_url": "https://api.openai.com/v1"}', "model"),
        ("scripted", "[1, 2]", "JSON object"),
    ],
)
def test_admin_checks_backend_settings(client, admin_role_user, backend, config, message):
    client.force_login(admin_role_user)

    response = client.post(
        "/admin/widget/site/add/", form_data(agent_backend=backend, agent_config=config)
    )

    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors)


def test_secret_is_write_only_and_masked(client, admin_role_user):
    client.force_login(admin_role_user)
    client.post(
        "/admin/widget/site/add/",
        form_data(
            agent_backend="openai",
            agent_config='{"model": "gpt-4o-mini"}',
            new_secret=SECRET,
        ),
    )
    site = Site.objects.get()
    assert site.agent_secret == SECRET

    page = client.get(f"/admin/widget/site/{site.pk}/change/").content.decode()

    assert SECRET not in page
    assert SECRET[:12] not in page
    assert "••••••••1234" in page


def test_saving_without_a_new_secret_keeps_the_old_one(client, admin_role_user):
    site = SiteFactory(agent_secret=SECRET, allowed_origins=[])
    client.force_login(admin_role_user)

    response = client.post(f"/admin/widget/site/{site.pk}/change/", form_data())

    assert response.status_code == 302
    site.refresh_from_db()
    assert site.agent_secret == SECRET
    assert site.name == "Spring campaign"


def test_secret_can_be_removed(client, admin_role_user):
    site = SiteFactory(agent_secret=SECRET)
    client.force_login(admin_role_user)

    client.post(f"/admin/widget/site/{site.pk}/change/", form_data(clear_secret="on"))

    site.refresh_from_db()
    assert site.agent_secret == ""


def test_change_page_shows_embed_snippets_ready_to_copy(client, admin_role_user, settings):
    settings.PUBLIC_BASE_URL = "https://chat.example.com"
    site = SiteFactory(public_key="key-123")
    client.force_login(admin_role_user)

    page = client.get(f"/admin/widget/site/{site.pk}/change/").content.decode()

    assert (
        "&lt;script src=&quot;https://chat.example.com/widget/embed.js&quot; "
        "data-site=&quot;key-123&quot; async&gt;&lt;/script&gt;"
    ) in page
    assert "&lt;iframe src=&quot;https://chat.example.com/widget/key-123/&quot;" in page
    assert 'data-copy-target="embed-script-' in page
    assert "widget/admin.js" in page


def test_qa_reviewer_sees_sites_read_only_without_the_secret(client, qa_user):
    site = SiteFactory(agent_secret=SECRET, name="Read only")
    client.force_login(qa_user)

    page = client.get(f"/admin/widget/site/{site.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html
    assert "••••••••1234" in html
    assert 'name="new_secret"' not in html
    assert client.post(f"/admin/widget/site/{site.pk}/change/", form_data()).status_code == 403
    site.refresh_from_db()
    assert site.name == "Read only"


def test_agents_cannot_open_the_site_admin(client, agent_user):
    client.force_login(agent_user)

    response = client.get("/admin/widget/site/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_site_list_query_count_is_bounded(client, admin_role_user, django_assert_max_num_queries):
    SiteFactory.create_batch(30)
    client.force_login(admin_role_user)

    with django_assert_max_num_queries(8):
        response = client.get("/admin/widget/site/")

    assert response.status_code == 200


def test_admin_edits_the_ai_budget_and_price(client, admin_role_user):
    client.force_login(admin_role_user)
    site = SiteFactory()

    response = client.post(
        f"/admin/widget/site/{site.pk}/change/",
        form_data(
            ai_session_token_budget="5000",
            ai_daily_token_budget="",  # empty: no daily token limit
            ai_session_message_budget="10",
            ai_daily_message_budget="0",  # 0: the backend is never called
            ai_price_per_1k_tokens="0.002500",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    site.refresh_from_db()
    assert site.ai_session_token_budget == 5000
    assert site.ai_daily_token_budget is None
    assert (site.ai_session_message_budget, site.ai_daily_message_budget) == (10, 0)
    assert site.ai_price_per_1k_tokens == Decimal("0.0025")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ai_price_per_1k_tokens", "-1"),
        ("ai_price_per_1k_tokens", "abc"),
        ("ai_session_token_budget", "-5"),
        ("ai_daily_message_budget", "1.5"),
    ],
)
def test_admin_refuses_a_bad_budget_naming_the_field(client, admin_role_user, field, value):
    client.force_login(admin_role_user)

    response = client.post("/admin/widget/site/add/", form_data(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Site.objects.exists()


def test_budget_fields_are_on_the_change_page(client, admin_role_user):
    client.force_login(admin_role_user)
    site = SiteFactory()

    page = client.get(f"/admin/widget/site/{site.pk}/change/").content.decode()

    assert "AI budget" in page
    for name in ("ai_session_token_budget", "ai_daily_message_budget", "ai_price_per_1k_tokens"):
        assert f'name="{name}"' in page


def test_daily_usage_is_listed_read_only(client, admin_role_user):
    client.force_login(admin_role_user)
    site = SiteFactory(name="Spring campaign")
    usage = SiteDailyUsage.objects.create(site=site, day=date(2026, 3, 9), ai_tokens=1234)

    listing = client.get("/admin/widget/sitedailyusage/")
    detail = client.get(f"/admin/widget/sitedailyusage/{usage.pk}/change/")

    assert listing.status_code == 200 and "Spring campaign" in listing.content.decode()
    assert detail.status_code == 200
    assert 'name="ai_tokens"' not in detail.content.decode()  # shown, not editable
    assert client.get("/admin/widget/sitedailyusage/add/").status_code == 403
