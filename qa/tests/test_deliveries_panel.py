"""The console and the outbox together: a flagged issue queues one email, and the change view
shows the session's lead webhooks and emails."""

import pytest
from django.urls import reverse

from qa import services
from sessions_app.models import Delivery, DeliveryKind, WebhookEndpoint

pytestmark = pytest.mark.django_db


def change_url(session) -> str:
    return reverse("admin:sessions_app_chatsession_change", args=[session.pk])


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(
        name="n8n <b>lead intake</b>", url="https://n8n.example.com/webhook/leads"
    )


def test_flagging_an_issue_queues_exactly_one_email_per_entry(
    settings, qa_user, admin_role_user, make_conversation, django_capture_on_commit_callbacks
):
    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com"]
    session = make_conversation()
    emails = Delivery.objects.filter(session=session, kind=DeliveryKind.EMAIL)

    with django_capture_on_commit_callbacks(execute=True):
        services.qa_mark_issue(session=session, by=qa_user, note="Asked for the email twice")
    assert emails.count() == 1
    email = emails.get()
    assert email.payload["to"] == ["qa-team@example.com"]
    assert "Asked for the email twice" in email.payload["text"]

    # Fixed (QA is told it awaits a re-check), then flagged again: a new entry into `issue`, so
    # a second issue email; nothing else.
    issue_emails = emails.filter(event_type="qa.issue_flagged")
    services.qa_mark_fixed(session=session, by=admin_role_user, feedback="Prompt updated")
    assert emails.filter(event_type="qa.session_fixed").count() == 1
    services.qa_mark_passed(session=session, by=qa_user)
    assert issue_emails.count() == 1
    services.qa_mark_issue(session=session, by=qa_user, note="Still asks twice")
    assert issue_emails.count() == 2
    assert emails.count() == 3


def test_change_view_lists_the_sessions_deliveries_as_text(
    settings, client, qa_user, endpoint, make_conversation, django_assert_max_num_queries
):
    settings.QA_NOTIFY_EMAILS = ["qa-team@example.com"]
    session = make_conversation()  # the lead is captured: one webhook row per endpoint
    services.qa_mark_issue(session=session, by=qa_user, note="Vague pricing")
    other = make_conversation(name="Other Lead", email="other@example.com")

    client.force_login(qa_user)
    with django_assert_max_num_queries(24):  # 14, the first opening's claim, scorecards' reads
        response = client.get(change_url(session))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Webhook deliveries and emails" in html
    assert "lead.captured" in html
    assert "qa-team@example.com" in html
    assert "n8n &lt;b&gt;lead intake&lt;/b&gt;" in html
    assert "<b>lead intake</b>" not in html
    # Only this session's rows; QA reviewers may open the delivery log.
    own = Delivery.objects.filter(session=session)
    assert own.count() == 2
    for delivery in own:
        assert reverse("admin:sessions_app_delivery_change", args=[delivery.pk]) in html
    for delivery in Delivery.objects.filter(session=other):
        assert reverse("admin:sessions_app_delivery_change", args=[delivery.pk]) not in html


def test_change_view_explains_an_empty_delivery_log(client, qa_user, make_conversation):
    session = make_conversation(name=None, email=None)
    client.force_login(qa_user)
    html = client.get(change_url(session)).content.decode()
    assert "Nothing queued for this session" in html
