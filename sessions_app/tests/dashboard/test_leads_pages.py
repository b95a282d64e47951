"""The dashboard's Leads page and a lead's page: roles, content as text, filters, query counts."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from sessions_app.leads import lead_key
from sessions_app.models import ChatSession, CompletionStatus
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

LEADS = reverse("dashboard:leads")
XSS = '<img src=x onerror="alert(1)">'


def lead_url(email: str) -> str:
    return reverse("dashboard:lead", args=[lead_key(email)])


@pytest.fixture
def visits():
    now = timezone.now()
    first = ChatSessionFactory(
        started_at=now - timedelta(days=2),
        lead_name=XSS,
        lead_email="mallory@example.com",
        completion_status=CompletionStatus.COMPLETE,
    )
    second = ChatSessionFactory(
        started_at=now - timedelta(days=1), lead_email="Mallory@example.com", lead_phone=XSS
    )
    other = ChatSessionFactory(lead_name="Olga", lead_email="olga@example.com")
    return {"first": first, "second": second, "other": other}


def test_pages_send_anonymous_visitors_to_sign_in(client, visits):
    for url in (LEADS, lead_url("mallory@example.com")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["agent", "qa", "admin"])
def test_pages_open_for_every_role(client, make_user, visits, role):
    client.force_login(make_user(role))
    assert client.get(LEADS).status_code == 200
    assert client.get(lead_url("mallory@example.com")).status_code == 200


def test_pages_refused_to_a_user_without_a_role(client, no_role_user, visits):
    client.force_login(no_role_user)
    assert client.get(LEADS).status_code == 403
    assert client.get(lead_url("mallory@example.com")).status_code == 403


def test_leads_page_is_in_the_nav_and_lists_people_as_text(client, agent_user, visits):
    client.force_login(agent_user)
    content = client.get(LEADS).content.decode()
    assert f'href="{LEADS}"' in content
    assert XSS not in content
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in content
    assert content.count('data-lead="') == 2
    assert lead_url("mallory@example.com") in content
    assert "mallory@example.com" not in reverse("dashboard:lead", args=[lead_key("m@x.io")])
    assert "2 people" in content


def test_leads_page_filters_sort_and_pages(client, agent_user, visits):
    client.force_login(agent_user)
    only_olga = client.get(LEADS, {"q": "olga"}).content.decode()
    assert only_olga.count('data-lead="') == 1 and "Olga" in only_olga
    page_two = client.get(LEADS, {"ordering": "email", "page_size": 1, "page": 2})
    assert page_two.context["lead_page"].leads[0].name == "Olga"
    content = page_two.content.decode()
    assert "Page 2 of 2" in content
    assert "ordering=email&amp;page_size=1&amp;page=1" in content  # Previous keeps the filters


def test_leads_page_shows_bad_filter_values_with_a_400(client, agent_user, visits):
    client.force_login(agent_user)
    response = client.get(LEADS, {"channel": "fax", "date_from": "soon"})
    assert response.status_code == 400
    content = response.content.decode()
    assert "These filters cannot be applied" in content
    assert "channel: Unknown value &#x27;fax&#x27;" in content
    assert "date_from:" in content
    assert 'data-lead="' not in content


def test_export_links_carry_the_filters_and_need_the_permission(client, make_user, visits):
    user = make_user("agent", username="no-export")
    client.force_login(user)
    content = client.get(LEADS, {"q": "olga", "page": "1"}).content.decode()
    assert reverse("staff-api:export-leads-csv") + "?q=olga" in content
    export = Permission.objects.get(codename="export_chatsession")
    for group in user.groups.all():
        group.permissions.remove(export)
    content = client.get(LEADS, {"q": "olga"}).content.decode()
    assert reverse("staff-api:export-leads-csv") not in content


def test_lead_page_lists_every_conversation_with_links(client, qa_user, visits):
    client.force_login(qa_user)
    response = client.get(lead_url("mallory@example.com"))
    content = response.content.decode()
    assert XSS not in content
    for session in (visits["first"], visits["second"]):
        assert reverse("dashboard:session", args=[session.public_id]) in content
    assert reverse("dashboard:session", args=[visits["other"].public_id]) not in content
    assert content.index(str(visits["second"].public_id)) < content.index(
        str(visits["first"].public_id)
    )


def test_lead_page_of_no_one_is_a_404(client, agent_user, visits):
    client.force_login(agent_user)
    assert client.get(lead_url("nobody@example.com")).status_code == 404
    assert client.get("/dashboard/leads/mallory@example.com/").status_code == 404
    ChatSession.objects.filter(lead_key=lead_key("olga@example.com")).update(
        deleted_at=timezone.now()
    )
    assert client.get(lead_url("olga@example.com")).status_code == 404


def test_query_counts_do_not_grow_with_people_or_conversations(
    client, agent_user, django_assert_max_num_queries
):
    client.force_login(agent_user)
    ChatSessionFactory(lead_email="p@example.com")
    client.get(LEADS)
    with django_assert_max_num_queries(12) as small_list:
        client.get(LEADS)
    with django_assert_max_num_queries(12) as small_lead:
        client.get(lead_url("p@example.com"))
    ChatSessionFactory.create_batch(30, lead_email="p@example.com")
    for i in range(30):
        ChatSessionFactory(lead_email=f"p{i}@example.com")
    with django_assert_max_num_queries(12) as large_list:
        assert client.get(LEADS).status_code == 200
    with django_assert_max_num_queries(12) as large_lead:
        assert client.get(lead_url("p@example.com")).status_code == 200
    assert len(large_list.captured_queries) == len(small_list.captured_queries)
    assert len(large_lead.captured_queries) == len(small_lead.captured_queries)


def test_empty_form_fields_mean_any(client, agent_user, visits):
    client.force_login(agent_user)
    form = {"q": "", "completion": "", "qa_status": "", "archive": "active", "site": ""}
    form |= {"channel": "", "date_from": "", "date_to": "", "ordering": "-last_seen"}
    response = client.get(LEADS, form)
    assert response.status_code == 200
    assert response.context["lead_page"].count == 2
