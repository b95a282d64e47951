"""Dashboard pages: who may open them, what they render, stored text shown as text."""

import pytest
from django.urls import reverse

from sessions_app.tests.factories import (
    AutomationErrorFactory,
    ChatMessageFactory,
    ChatSessionFactory,
)
from widget.tests.factories import SiteFactory

PAGES = ["dashboard:overview", "dashboard:sessions", "dashboard:trash", "dashboard:errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_pages_send_anonymous_visitors_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("role", ["agent", "qa", "admin"])
def test_pages_open_for_every_role(client, make_user, name, role):
    client.force_login(make_user(role))
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b'id="dashboard-config"' in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_pages_refused_to_a_user_without_a_role(client, no_role_user, name):
    client.force_login(no_role_user)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.django_db
def test_agent_config_allows_archive_but_qa_config_does_not(client, agent_user, qa_user):
    client.force_login(agent_user)
    assert client.get(reverse("dashboard:sessions")).context["config"]["can"]["archive"] is True
    client.force_login(qa_user)
    response = client.get(reverse("dashboard:sessions"))
    assert response.context["config"]["can"]["archive"] is False
    assert b"Archive selected" not in response.content


@pytest.mark.django_db
def test_empty_dashboard_shows_how_to_embed_the_widget(client, agent_user):
    site = SiteFactory(public_key="acme-key")
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:sessions")).content.decode()
    assert '/widget/embed.js" data-site="acme-key" async' in content
    assert site.name in content


@pytest.mark.django_db
def test_session_detail_renders_stored_text_as_text(client, agent_user):
    session = ChatSessionFactory(
        lead_name="<script>alert(1)</script>",
        page_url="javascript:alert(2)",
        referrer="https://ref.example.com/a",
    )
    ChatMessageFactory(session=session, text="<img src=x onerror=alert(3)>")
    AutomationErrorFactory(session=session, message="<b>boom</b>", execution_url="javascript:x")
    client.force_login(agent_user)
    response = client.get(reverse("dashboard:session", args=[session.public_id]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)" not in content and "&lt;script&gt;alert(1)" in content
    assert "<img src=x" not in content and "&lt;img src=x onerror=alert(3)&gt;" in content
    assert "<b>boom</b>" not in content
    assert 'href="javascript:' not in content
    assert 'href="https://ref.example.com/a"' in content


@pytest.mark.django_db
def test_session_detail_links_only_urls_with_a_host(client, agent_user):
    # The filter looked at the scheme alone, so these became links that lead nowhere.
    session = ChatSessionFactory(page_url="http:landing", referrer="http://")
    AutomationErrorFactory(session=session, execution_url="https://:5678/workflow/7")
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert "http:landing" in content  # shown as text
    assert 'href="http:landing"' not in content
    assert 'href="http://"' not in content
    assert 'href="https://:5678' not in content


@pytest.mark.django_db
def test_session_detail_of_unknown_session_is_404(client, agent_user):
    client.force_login(agent_user)
    url = reverse("dashboard:session", args=["00000000-0000-0000-0000-000000000000"])
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_session_detail_query_count_does_not_grow_with_the_transcript(
    client, agent_user, django_assert_max_num_queries
):
    session = ChatSessionFactory()
    ChatMessageFactory.create_batch(3, session=session)
    client.force_login(agent_user)
    url = reverse("dashboard:session", args=[session.public_id])
    client.get(url)
    # 8, and one per history source (lifecycle, QA) for the History panel.
    with django_assert_max_num_queries(10):
        client.get(url)
    ChatMessageFactory.create_batch(40, session=session)
    AutomationErrorFactory.create_batch(5, session=session)
    with django_assert_max_num_queries(10):
        assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_errors_page_lists_open_errors_with_session_links(client, agent_user):
    session = ChatSessionFactory(lead_name="Dana")
    AutomationErrorFactory(session=session, message="Webhook 500")
    AutomationErrorFactory(message="Old one", resolved=True)
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:errors")).content.decode()
    assert "Webhook 500" in content and "Old one" not in content
    assert reverse("dashboard:session", args=[session.public_id]) in content


@pytest.mark.django_db
def test_api_docs_page_has_no_inline_script(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "?script=" in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "application/javascript" in script["Content-Type"]


@pytest.mark.django_db
def test_session_detail_shows_the_lead_webhook_and_its_outcome(client, agent_user):
    from sessions_app.models import Delivery, DeliveryStatus, WebhookEndpoint
    from sessions_app.services import lead_capture

    WebhookEndpoint.objects.create(name="n8n <i>leads</i>", url="https://n8n.example.com/hook")
    session = ChatSessionFactory()
    lead_capture(session=session, name="Dana", email="dana@example.com")
    delivery = Delivery.objects.get(session=session)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, attempts=9, last_status_code=500, last_error="<b>down</b>"
    )
    other = ChatSessionFactory()
    lead_capture(session=other, name="Eve", email="eve@example.com")

    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert f'data-delivery="{delivery.pk}"' in content
    assert "lead.captured" in content and "Failed" in content and "HTTP 500" in content
    assert "n8n &lt;i&gt;leads&lt;/i&gt;" in content and "<i>leads</i>" not in content
    assert "&lt;b&gt;down&lt;/b&gt;" in content
    other_delivery = Delivery.objects.get(session=other)
    assert f'data-delivery="{other_delivery.pk}"' not in content


@pytest.mark.django_db
def test_session_detail_explains_a_lead_captured_without_an_endpoint(client, agent_user):
    from sessions_app.services import lead_capture

    session = ChatSessionFactory()
    lead_capture(session=session, name="Dana", email="dana@example.com")
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[session.public_id])).content.decode()
    assert "no webhook endpoint was set up" in content
