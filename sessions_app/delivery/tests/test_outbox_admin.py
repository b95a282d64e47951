"""Admin pages of the outbox: endpoints, deliveries with their attempts, redeliver and cancel."""

import pytest
from django.urls import reverse

from sessions_app.delivery import outbox
from sessions_app.delivery.tests.conftest import send_claimed
from sessions_app.delivery.webhooks import SendResult
from sessions_app.models import Delivery, DeliveryAttempt, DeliveryStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries(make_endpoint, captured_lead):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    for i in range(6):
        captured_lead(name=f"<b>Lead {i}</b>", email=f"lead{i}@example.com")
    [claimed] = outbox.deliveries_claim(worker="w", limit=1)
    send_claimed(
        delivery=claimed,
        result=SendResult(500, 20, "HTTP 500", response_body="<script>alert(1)</script>"),
    )
    return endpoint, claimed


def test_delivery_list_filters_and_bounded_queries(
    client, admin_role_user, deliveries, django_assert_max_num_queries
):
    client.force_login(admin_role_user)
    url = reverse("admin:sessions_app_delivery_changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.count(b"lead.captured") >= 6
    filtered = client.get(url, {"status__exact": "pending"})
    assert filtered.status_code == 200
    endpoint, _ = deliveries
    assert client.get(url, {"endpoint__id__exact": endpoint.pk}).status_code == 200
    assert client.get(url, {"q": "lead3@example.com"}).status_code == 200


def test_delivery_page_shows_attempts_and_payload_as_escaped_text(
    client, admin_role_user, deliveries
):
    _, claimed = deliveries
    client.force_login(admin_role_user)
    response = client.get(reverse("admin:sessions_app_delivery_change", args=[claimed.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the receiver's answer
    assert "<script>alert(1)</script>" not in html
    assert "&lt;b&gt;Lead" in html and "<b>Lead" not in html  # the frozen payload
    assert "HTTP 500" in html


def test_redeliver_and_cancel_actions_go_through_the_services(client, admin_role_user, deliveries):
    _, claimed = deliveries
    client.force_login(admin_role_user)
    url = reverse("admin:sessions_app_delivery_changelist")
    pending = Delivery.objects.exclude(pk=claimed.pk).first()
    response = client.post(
        url, {"action": "cancel", "_selected_action": [pending.pk, claimed.pk]}, follow=True
    )
    assert response.status_code == 200
    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.CANCELLED
    assert pending.cancelled_by == admin_role_user

    response = client.post(url, {"action": "redeliver", "_selected_action": [pending.pk]})
    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.PENDING
    assert pending.redelivery_requested_by == admin_role_user
    [again] = outbox.deliveries_claim(worker="w", limit=10, ids=[pending.pk])
    send_claimed(delivery=again, result=SendResult(200, 5))
    assert DeliveryAttempt.objects.get(delivery=pending).requested_by == admin_role_user


def test_refused_action_is_reported_not_crashed(client, admin_role_user, deliveries):
    _, claimed = deliveries
    delivered = Delivery.objects.exclude(pk=claimed.pk).first()
    [row] = outbox.deliveries_claim(worker="w", limit=1, ids=[delivered.pk])
    client.force_login(admin_role_user)
    response = client.post(
        reverse("admin:sessions_app_delivery_changelist"),
        {"action": "cancel", "_selected_action": [row.pk]},
        follow=True,
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.status == DeliveryStatus.CANCELLED  # an in-flight row can be cancelled
    response = client.post(
        reverse("admin:sessions_app_delivery_changelist"),
        {"action": "cancel", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "Cannot move a delivery" in response.content.decode()


def test_endpoint_list_shows_last_success_and_failure(client, admin_role_user, deliveries):
    endpoint, _ = deliveries
    client.force_login(admin_role_user)
    response = client.get(reverse("admin:sessions_app_webhookendpoint_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert endpoint.name in html and "HTTP 500" in html
    page = client.get(reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk]))
    assert page.status_code == 200


def test_endpoint_form_rejects_a_secret_that_is_not_whsec(client, admin_role_user, deliveries):
    endpoint, _ = deliveries
    client.force_login(admin_role_user)
    url = reverse("admin:sessions_app_webhookendpoint_change", args=[endpoint.pk])
    response = client.post(
        url,
        {
            "name": endpoint.name,
            "url": endpoint.url,
            "events": "[]",
            "is_active": "on",
            "secret": "hunter2",
            "auth_header_name": "",
            "auth_header_value": "",
        },
    )
    assert response.status_code == 200
    assert "Standard Webhooks secret" in response.content.decode()


@pytest.mark.parametrize("role", ["qa", "agent"])
def test_endpoints_with_secrets_stay_closed_to_non_admins(client, make_user, role, deliveries):
    client.force_login(make_user(role))
    response = client.get(reverse("admin:sessions_app_webhookendpoint_changelist"))
    assert response.status_code in (302, 403)
