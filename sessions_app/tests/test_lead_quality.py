"""Where a lead's quality shows (issue 16): the service, ingest, exports, the dashboard's session
page and list, the QA console's lead panel."""

import json

import pytest
from django.urls import reverse

from leadchat.testing_dns import LoopbackDNSServer, Zone
from sessions_app.badges import badges_config
from sessions_app.errors import InvalidLead
from sessions_app.leads import normalize_name
from sessions_app.models import ChatSession, EmailQuality
from sessions_app.services import lead_capture
from sessions_app.tests.factories import ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


def test_lead_capture_checks_the_email_when_the_caller_did_not():
    session = ChatSessionFactory()
    lead_capture(session=session, name="Ana", email="info@acme.example")
    assert session.email_quality == EmailQuality.ROLE


def test_lead_capture_keeps_the_callers_check_and_the_consent():
    session = ChatSessionFactory()
    lead_capture(
        session=session,
        email="ana@acme.example",
        email_quality=EmailQuality.UNVERIFIABLE,
        consent_text="We only use it to reply.",
    )
    session.refresh_from_db()
    assert session.email_quality == EmailQuality.UNVERIFIABLE
    assert session.lead_consent_text == "We only use it to reply."


@pytest.mark.parametrize(
    ("region", "given", "stored"),
    [
        ("PT", "912 345 678", "+351912345678"),
        ("", "+1 (212) 555-0123", "+12125550123"),
        ("US", "(212) 555-0123", "+12125550123"),
    ],
)
def test_phone_is_stored_in_e164(region, given, stored):
    session = ChatSessionFactory(site=SiteFactory(phone_default_region=region))
    lead_capture(session=session, phone=given)
    session.refresh_from_db()
    assert session.lead_phone == stored


def test_invalid_phone_is_not_stored_as_the_phone_but_kept_as_given():
    session = ChatSessionFactory(site=SiteFactory())
    lead_capture(session=session, phone="555 12")  # national, and no region to read it
    session.refresh_from_db()
    assert session.lead_phone == ""
    assert session.lead_data == {"phone_as_given": "555 12"}


def test_ingest_flags_email_quality_from_a_loopback_dns_server(client, settings):
    from sessions_app.tests.test_ingest_api import KEY, message, post

    settings.INGEST_API_KEY = KEY
    zone = Zone()
    zone.names.add("nomail.example")
    with LoopbackDNSServer(zone) as dns_server:
        settings.LEAD_EMAIL_DNS_CHECK = True
        settings.LEAD_EMAIL_DNS_NAMESERVERS = [dns_server.nameserver]
        response = post(message(message_id="m1", lead={"email": "ana@nomail.example"}))
        post(message(message_id="m2", lead={"email": "ana@nomail.example"}))
    assert response.status_code == 201, response.content
    session = ChatSession.objects.get()
    # Ingest accepts and flags (the other channel's agent has already answered).
    assert (session.lead_email, session.email_quality) == ("ana@nomail.example", "no_mx")
    # The second message's check was the cache's: one MX, one A, one AAAA query in all.
    assert len(dns_server.queries) == 3


@pytest.fixture
def flagged():
    session = ChatSessionFactory(lead_name="Ana", lead_email="ana@mailinator.com")
    lead_capture(session=session, email="ana@mailinator.com", consent_text="<b>We</b> reply.")
    ChatSession.objects.filter(pk=session.pk).update(lead_declined_reason="Declined twice.")
    session.refresh_from_db()
    return session


def test_exports_carry_email_quality_consent_and_decline(client, agent_user, flagged):
    client.force_login(agent_user)
    response = client.get(reverse("staff-api:export-jsonl"))
    row = json.loads(b"".join(response.streaming_content).decode().splitlines()[0])
    assert row["email_quality"] == "disposable"
    assert row["lead_consent_text"] == "<b>We</b> reply."
    assert row["lead_declined_reason"] == "Declined twice."


def test_session_page_shows_email_quality_consent_and_decline(client, agent_user, flagged):
    client.force_login(agent_user)
    content = client.get(reverse("dashboard:session", args=[flagged.public_id])).content.decode()
    assert 'data-field="email-quality"><span class="badge text-bg-warning">Disposable' in content
    assert "&lt;b&gt;We&lt;/b&gt; reply." in content  # stored text, shown as text
    assert 'data-field="declined">Declined twice.' in content


def test_session_list_api_and_badges_carry_email_quality(client, agent_user, flagged):
    client.force_login(agent_user)
    rows = client.get(reverse("staff-api:sessions")).json()["results"]
    assert rows[0]["lead"]["email_quality"] == "disposable"
    look = badges_config()["email_quality"]["disposable"]
    assert look == {"label": "Disposable", "style": "warning", "listLabel": "Email: disposable"}


def test_qa_lead_panel_shows_email_quality(client, qa_user, flagged):
    client.force_login(qa_user)
    url = reverse("admin:sessions_app_chatsession_change", args=[flagged.pk])
    content = client.get(url, follow=True).content.decode()
    assert 'class="qa-state qa-state--email-quality-disposable">Disposable' in content


@pytest.mark.parametrize(
    ("given", "name"),
    [("-Dan", "Dan"), ("+Bob Smith", "Bob Smith"), ("@Carol", "Carol"), ("* Ana.", "Ana")],
)
def test_leading_punctuation_is_dropped_from_names(given, name):
    assert normalize_name(given) == name


@pytest.mark.parametrize("given", ["no thanks", "No", "skip", "later", "NOPE!", "12345", "a@b.co"])
def test_refusals_numbers_and_emails_are_not_names(given):
    with pytest.raises(InvalidLead) as caught:
        normalize_name(given)
    assert caught.value.field == "name"


def test_ingest_refuses_a_refusal_as_the_name(settings):
    from sessions_app.tests.test_ingest_api import KEY, message, post

    settings.INGEST_API_KEY = KEY
    response = post(message(message_id="m1", lead={"name": "no thanks"}))
    assert response.status_code == 400
    assert response.json()["results"][0]["field"] == "lead.name"
    assert not ChatSession.objects.exists()
