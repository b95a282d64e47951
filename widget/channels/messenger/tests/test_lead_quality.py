"""Lead quality on Messenger (issue 16): the same site policy, privacy line and email grade as
the widget, since Messenger asks the site's agent through widget.services.agent_answer."""

import pytest

from sessions_app.models import ChatSession, CompletionStatus, EmailQuality
from widget.channels.messenger.tests.conftest import text_event, webhook_body
from widget.channels.messenger.tests.test_processing import run_worker

pytestmark = pytest.mark.django_db


def test_messenger_refuses_a_disposable_email_shows_the_privacy_line_and_grades_the_lead(
    post_webhook, graph, page_site
):
    page_site.email_refuse_disposable = True
    page_site.privacy_text = "We only use your email to reply."
    page_site.save()

    for text in ["I need a quote", "I'm Ana", "ana@mailinator.com", "ana@acme.example"]:
        assert post_webhook(webhook_body(text_event(text))).status_code == 200
        run_worker()

    texts = graph.texts
    assert texts[1].endswith("We only use your email to reply.")
    assert texts[2].startswith("mailinator.com is a disposable email service")
    session = ChatSession.objects.get()
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.lead_email == "ana@acme.example"
    assert session.email_quality == EmailQuality.VALID
    assert session.lead_consent_text == "We only use your email to reply."
