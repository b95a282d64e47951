"""Webhook sends under a wall-clock deadline, to allowed addresses only (issue 11, points 5, 17).

`webhook_post` is what the delivery worker calls for every attempt; these tests call it against
real loopback receivers that misbehave byte by byte, and save endpoints through the admin.
"""

import pytest

from leadchat.testing import LoopbackServer, Reply
from leadchat.testing_outbound import DripServer, timed
from sessions_app.delivery.webhooks import webhook_post
from sessions_app.models import WebhookEndpoint

BUDGET = 2.0
SLACK = 0.6


@pytest.fixture
def small_budget(settings):
    settings.WEBHOOK_TOTAL_TIMEOUT = BUDGET
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0


def send(url):
    return webhook_post(url=url, body='{"type":"webhook.test"}', headers={"webhook-id": "evt_1"})


def test_a_receiver_dripping_its_headers_is_cut_at_the_total_timeout(small_budget):
    # One byte every 0.5 s: requests' read timeout (restarted on every byte) never fires, so
    # before the fix this attempt lasted as long as the receiver liked (40 s against 15 s).
    with DripServer(interval=0.5, drip="headers") as receiver:
        result, elapsed = timed(send, f"{receiver.url}/webhook/lead")

    assert not result.ok
    assert result.error.startswith("Timed out"), result.error
    assert elapsed < BUDGET + SLACK, f"the attempt took {elapsed:.2f}s"
    assert result.duration_ms < (BUDGET + SLACK) * 1000
    assert not result.permanent  # a slow receiver is retried on the schedule


def test_a_200_with_an_endless_body_is_delivered_and_cut_at_the_total_timeout(small_budget):
    # The status line is the receiver's acceptance; the body it then drips is not held against
    # the deadline (nor against the delivery).
    with DripServer(interval=0.5, drip="body", status="200 OK") as receiver:
        result, elapsed = timed(send, f"{receiver.url}/webhook/lead")

    assert result.ok and result.error == ""
    assert BUDGET * 0.9 <= elapsed < BUDGET + SLACK, f"the attempt took {elapsed:.2f}s"


def test_a_receiver_that_accepts_and_never_answers_is_cut_at_the_total_timeout(small_budget):
    with DripServer(drip="silent") as receiver:
        result, elapsed = timed(send, f"{receiver.url}/webhook/lead")

    assert result.error.startswith("Timed out")
    assert BUDGET * 0.9 <= elapsed < BUDGET + SLACK


def test_a_redirect_with_an_endless_body_is_recorded_at_once_and_not_followed(small_budget):
    with DripServer(interval=0.05, drip="body", status="301 Moved Permanently") as receiver:
        result, elapsed = timed(send, f"{receiver.url}/webhook/lead")

    assert result.status_code == 301
    assert "not followed" in result.error
    assert elapsed < 1.0
    assert receiver.connections == 1


def test_loopback_receiver_is_refused_when_private_networks_are_not_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    with LoopbackServer(lambda request: Reply(200, {"ok": True})) as receiver:
        result = send(f"{receiver.url}/webhook/lead")
        assert receiver.requests == []

    assert result.status_code is None
    assert result.error.startswith("Blocked:") and "127.0.0.1" in result.error
    assert result.permanent  # no retry can change where the URL points


def test_loopback_receiver_is_reached_when_private_networks_are_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    with LoopbackServer(lambda request: Reply(200, {"ok": True})) as receiver:
        result = send(f"http://localhost:{receiver.port}/webhook/lead")

    assert result.ok and len(receiver.requests) == 1


def test_metadata_receiver_is_refused_even_with_private_networks_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    result, elapsed = timed(send, "http://169.254.169.254/latest/meta-data/iam/")

    assert result.error.startswith("Blocked:") and "metadata" in result.error
    assert result.permanent
    assert elapsed < 0.5


# --- Saving an endpoint in the admin ----------------------------------------------------------


def endpoint_form(url):
    return {
        "name": "n8n",
        "url": url,
        "events": "[]",
        "is_active": "on",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "auth_header_name": "",
        "auth_header_value": "",
    }


@pytest.mark.parametrize(
    ("url", "allow_private", "fragment"),
    [
        ("http://169.254.169.254/latest/meta-data/", True, "cloud metadata"),
        ("http://[fd00:ec2::254]/hook", True, "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", True, "cloud metadata"),
        ("http://localhost:5678/webhook/lead", False, "resolves to 127.0.0.1"),
        ("http://192.168.1.20:5678/webhook/lead", False, "OUTBOUND_ALLOW_PRIVATE_NETWORKS"),
    ],
)
def test_admin_refuses_an_endpoint_url_that_can_never_be_sent_to(
    client, admin_role_user, settings, url, allow_private, fragment
):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = allow_private
    client.force_login(admin_role_user)

    response = client.post("/admin/sessions_app/webhookendpoint/add/", endpoint_form(url))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert fragment in str(errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_admin_saves_a_local_n8n_endpoint_when_private_networks_are_allowed(
    client, admin_role_user, settings
):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
    client.force_login(admin_role_user)

    response = client.post(
        "/admin/sessions_app/webhookendpoint/add/",
        endpoint_form("http://localhost:5678/webhook/lead"),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert WebhookEndpoint.objects.get().url == "http://localhost:5678/webhook/lead"
