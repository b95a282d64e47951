"""The site's Messenger section: what to paste into Meta, the write-only token, the check."""

import pytest

from widget.channels.messenger.tests.conftest import PAGE_ID, PAGE_TOKEN, VERIFY_TOKEN
from widget.models import Site
from widget.tests.test_admin import form_data

pytestmark = pytest.mark.django_db


def test_change_page_shows_the_callback_and_verify_token_but_never_the_token(
    client, admin_role_user, page_site
):
    client.force_login(admin_role_user)
    response = client.get(f"/admin/widget/site/{page_site.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "http://testserver/channels/messenger/webhook/" in html
    assert VERIFY_TOKEN in html
    assert PAGE_ID in html
    assert PAGE_TOKEN not in html
    assert f"••••••••{PAGE_TOKEN[-4:]}" in html
    assert f'id="messenger-check-{page_site.pk}"' in html
    assert "pages_messaging" in html


def test_admin_sets_page_id_and_token_and_keeps_the_token_when_left_empty(client, admin_role_user):
    client.force_login(admin_role_user)
    data = form_data(messenger_page_id=PAGE_ID, new_page_token=PAGE_TOKEN)
    assert client.post("/admin/widget/site/add/", data).status_code == 302
    site = Site.objects.get()
    assert (site.messenger_page_id, site.messenger_page_token) == (PAGE_ID, PAGE_TOKEN)
    response = client.post(
        f"/admin/widget/site/{site.pk}/change/", form_data(messenger_page_id=PAGE_ID)
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.messenger_page_token == PAGE_TOKEN


@pytest.mark.parametrize(
    "token,error",
    [("env:SECRET_KEY", "not allowed"), ("env:bad name", "not an environment variable")],
)
def test_admin_refuses_env_tokens_outside_the_allowed_prefix(client, admin_role_user, token, error):
    client.force_login(admin_role_user)
    response = client.post("/admin/widget/site/add/", form_data(new_page_token=token))
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors)


def test_two_sites_cannot_share_a_page(client, admin_role_user, page_site):
    client.force_login(admin_role_user)
    response = client.post("/admin/widget/site/add/", form_data(messenger_page_id=PAGE_ID))
    assert response.status_code == 200
    assert "already has this Facebook page id" in str(response.context["adminform"].form.errors)


def test_page_id_must_be_digits(client, admin_role_user):
    client.force_login(admin_role_user)
    response = client.post("/admin/widget/site/add/", form_data(messenger_page_id="my-page"))
    assert response.status_code == 200
    assert "digits only" in str(response.context["adminform"].form.errors)


def test_check_connection_reports_the_page_name(client, admin_role_user, page_site, graph):
    client.force_login(admin_role_user)
    response = client.post(f"/admin/widget/site/{page_site.pk}/messenger-check/", follow=True)
    assert response.status_code == 200
    assert "Connected to the Facebook page &#x27;Acme Page&#x27;" in response.content.decode()


def test_check_connection_reports_a_bad_token_with_the_fix(
    client, admin_role_user, page_site, graph
):
    page_site.messenger_page_token = "expired-token"
    page_site.save()
    client.force_login(admin_role_user)
    response = client.post(f"/admin/widget/site/{page_site.pk}/messenger-check/", follow=True)
    text = response.content.decode()
    assert "Graph error 190" in text
    assert "expired-token" not in text


def test_check_connection_without_a_token_says_what_to_set(client, admin_role_user, page_site):
    page_site.messenger_page_token = ""
    page_site.save()
    client.force_login(admin_role_user)
    response = client.post(f"/admin/widget/site/{page_site.pk}/messenger-check/", follow=True)
    assert "Set the Facebook page id and the page access token first." in response.content.decode()


def test_check_connection_is_post_only_and_for_editors(client, admin_role_user, qa_user, page_site):
    client.force_login(admin_role_user)
    assert client.get(f"/admin/widget/site/{page_site.pk}/messenger-check/").status_code == 405
    client.force_login(qa_user)
    assert client.post(f"/admin/widget/site/{page_site.pk}/messenger-check/").status_code == 403


def test_inbox_events_are_listed_read_only(client, admin_role_user, page_site, post_webhook):
    from widget.channels.messenger.tests.conftest import text_event, webhook_body

    post_webhook(webhook_body(text_event("hi", mid="m_listed")))
    client.force_login(admin_role_user)
    response = client.get("/admin/widget/messengerinboxevent/")
    assert response.status_code == 200
    assert "m_listed" in response.content.decode()
    assert client.get("/admin/widget/messengerinboxevent/add/").status_code == 403
