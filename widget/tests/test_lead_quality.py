"""Leads worth their name (issue 16), through the widget API as a visitor types them.

The scripted agent's name, phone, decline and consent rules, and each site's email policy
against a real DNS server on loopback (leadchat.testing_dns), never the network.
"""

import pytest

from leadchat.testing_dns import LoopbackDNSServer, Zone
from sessions_app.delivery.models import Delivery, WebhookEndpoint
from sessions_app.models import ChatMessage, ChatSession, CompletionStatus, EmailQuality
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns_server(settings):
    zone = Zone()
    zone.add("good.example", "MX", "10 mx.good.example.")
    zone.names.add("nomail.example")
    zone.add("gamil.com", "A", "192.0.2.7")  # a typo domain that resolves (they often do)
    zone.add("gmail.com", "MX", "5 mx.gmail.com.")
    with LoopbackDNSServer(zone) as server:
        settings.LEAD_EMAIL_DNS_CHECK = True
        settings.LEAD_EMAIL_DNS_NAMESERVERS = [server.nameserver]
        yield server


def chat(widget_client, *texts, site_key="test-site"):
    """Start a session and send `texts`; returns (session, the agent's last reply per text)."""
    session_id, token = widget_client.started(site_key=site_key)
    replies = []
    for text in texts:
        response = widget_client.say(session_id, token, text)
        assert response.status_code == 201, response.content
        replies.append(response.json()["messages"][-1]["text"])
    return ChatSession.objects.get(public_id=session_id), replies


def test_email_quality_is_stored_with_the_lead(site, widget_client, dns_server):
    session, _ = chat(widget_client, "quote", "Ana", "ana@good.example")
    assert session.completion_status == CompletionStatus.COMPLETE
    assert session.email_quality == EmailQuality.VALID


def test_no_mx_address_is_accepted_and_flagged_by_default(site, widget_client, dns_server):
    session, replies = chat(widget_client, "quote", "Ana", "ana@nomail.example")
    assert session.lead_email == "ana@nomail.example"
    assert session.email_quality == EmailQuality.NO_MX
    assert "thank you Ana" in replies[-1]


def test_site_refusing_no_mx_asks_again_saying_why(site, widget_client, dns_server):
    site.email_refuse_no_mx = True
    site.save()
    session, replies = chat(widget_client, "quote", "Ana", "ana@nomail.example", "ana@good.example")
    assert replies[2].startswith("nomail.example doesn't seem to receive email.")
    assert "another email" in replies[2]
    assert session.lead_email == "ana@good.example"
    assert session.email_quality == EmailQuality.VALID
    assert session.completion_status == CompletionStatus.COMPLETE


def test_site_refusing_disposable_asks_again(site, widget_client):
    site.email_refuse_disposable = True
    site.save()
    session, replies = chat(widget_client, "quote", "Ana", "ana@mailinator.com")
    assert "mailinator.com is a disposable email service" in replies[-1]
    assert session.lead_email == ""
    assert session.completion_status == CompletionStatus.IN_PROGRESS


def test_disposable_accepted_and_flagged_by_default(site, widget_client):
    session, _ = chat(widget_client, "quote", "Ana", "ana@mailinator.com")
    assert (session.lead_email, session.email_quality) == ("ana@mailinator.com", "disposable")


def test_role_address_is_flagged(site, widget_client):
    session, _ = chat(widget_client, "quote", "Ana", "sales@acme.example")
    assert session.email_quality == EmailQuality.ROLE
    assert session.completion_status == CompletionStatus.COMPLETE


def test_typo_is_suggested_and_yes_takes_the_suggestion(site, widget_client, dns_server):
    session, replies = chat(widget_client, "quote", "Ana", "ana@gmial.com", "yes")
    assert replies[2].startswith("Did you mean ana@gmail.com?")
    assert session.lead_email == "ana@gmail.com"
    assert session.email_quality == EmailQuality.VALID


def test_no_to_a_typo_suggestion_is_not_a_decline(site, widget_client):
    session, replies = chat(widget_client, "quote", "Ana", "ana@gmail.con", "no", "ana@acme.com")
    assert replies[3] == "No problem. Could you type your email again?"
    assert session.lead_email == "ana@acme.com"
    assert session.lead_declined_reason == ""


def test_typo_typed_again_is_taken_as_meant(site, widget_client, dns_server):
    session, replies = chat(widget_client, "quote", "Ana", "ana@gamil.com", "ana@gamil.com")
    assert replies[2].startswith("Did you mean ana@gmail.com?")
    assert session.lead_email == "ana@gamil.com"
    assert session.email_quality == EmailQuality.VALID  # it has an A record


def test_typo_of_a_disposable_lookalike_is_offered_when_refused(site, widget_client):
    # gmial.com itself is on the disposable list: refused, with the likely address offered.
    site.email_refuse_disposable = True
    site.save()
    session, replies = chat(widget_client, "quote", "Ana", "ana@gmial.com", "yes")
    assert "Did you mean ana@gmail.com? Could you give me another email?" in replies[2]
    assert session.lead_email == "ana@gmail.com"


def test_refusal_offers_the_typo_suggestion(site, widget_client, dns_server):
    site.email_refuse_no_mx = True
    site.save()
    _, replies = chat(widget_client, "quote", "Ana", "ana@gmail.con")
    assert replies[-1] == (
        "gmail.con doesn't seem to receive email. Did you mean ana@gmail.com? "
        "Could you give me another email?"
    )


@pytest.mark.parametrize("text", ["no thanks", "No", "skip", "later", "nope", "No thanks!"])
def test_a_refusal_is_not_a_name(site, widget_client, text):
    session, replies = chat(widget_client, "quote", text)
    assert session.lead_name == ""
    assert replies[-1].startswith("No problem. What's the best email")


@pytest.mark.parametrize("text", ["12345", "42"])
def test_a_number_is_not_a_name(site, widget_client, text):
    session, replies = chat(widget_client, "quote", text)
    assert session.lead_name == ""
    assert "didn't catch your name" in replies[-1]


@pytest.mark.parametrize(
    ("text", "name"), [("-Dan", "Dan"), ("+Bob Smith", "Bob Smith"), ("@Carol", "Carol")]
)
def test_leading_punctuation_is_dropped_from_a_name(site, widget_client, text, name):
    session, replies = chat(widget_client, "quote", text)
    assert session.lead_name == name
    assert replies[-1].startswith(f"Thanks, {name.split()[0]}!")


def test_email_at_the_name_prompt_is_thanked_for_then_the_name_is_asked(site, widget_client):
    session, replies = chat(widget_client, "quote", "ana@example.com", "Ana")
    assert replies[1] == "Thanks, I've got your email. And may I have your name?"
    assert (session.lead_name, session.lead_email) == ("Ana", "ana@example.com")
    assert session.completion_status == CompletionStatus.COMPLETE


def test_two_refusals_end_politely_with_the_contact_line(site, widget_client):
    site.contact_line = "Call us on +1 555 0100, 9-17 on weekdays."
    site.save()
    session, replies = chat(widget_client, "quote", "Ana", "no thanks", "no")
    assert "If you change your mind" in replies[2]
    assert replies[3] == (
        "No problem, I won't ask again. Call us on +1 555 0100, 9-17 on weekdays. Thanks for "
        "stopping by, and have a good day!"
    )
    last = ChatMessage.objects.filter(session=session).order_by("-created_at", "-id").first()
    assert last.metadata["step"] == "declined"
    assert last.metadata["expects"] == "text"
    assert session.lead_declined_reason == (
        "Declined to leave contact details 2 times (last asked for an email)."
    )
    assert session.completion_status == CompletionStatus.IN_PROGRESS


def test_after_declining_the_agent_stops_asking(site, widget_client):
    _, replies = chat(widget_client, "quote", "skip", "no", "what are your prices?")
    assert replies[-1] == "Thanks, I've added that to your conversation; the team will see it."


def test_an_email_after_declining_is_still_taken(site, widget_client):
    session, _ = chat(widget_client, "quote", "Ana", "no", "nope", "ok, ana@example.com")
    assert session.lead_email == "ana@example.com"
    assert session.completion_status == CompletionStatus.COMPLETE


def test_one_refusal_is_not_a_decline(site, widget_client):
    session, _ = chat(widget_client, "quote", "Ana", "no thanks", "ana@example.com")
    assert session.lead_declined_reason == ""
    assert session.completion_status == CompletionStatus.COMPLETE


def test_phone_is_normalised_with_the_sites_region(site, widget_client):
    site.phone_default_region = "PT"
    site.save()
    session, _ = chat(widget_client, "quote", "Ana", "912 345 678 or ana@example.com")
    assert session.lead_phone == "+351912345678"
    assert (session.lead_name, session.lead_email) == ("Ana", "ana@example.com")


def test_international_phone_without_a_region(site, widget_client):
    session, _ = chat(widget_client, "call me on +44 20 7946 0958 please")
    assert session.lead_phone == "+442079460958"


def test_invalid_phone_is_not_stored_and_the_agent_says_so(site, widget_client):
    session, replies = chat(widget_client, "quote", "Ana", "my phone is +1 555 0000")
    assert session.lead_phone == ""
    assert replies[-1].startswith("I've left the phone number out:")


def test_privacy_line_is_shown_before_the_email_and_stored_with_the_lead(site, widget_client):
    site.privacy_text = "We use your email only to reply to you."
    site.privacy_url = "https://acme.example/privacy"
    site.save()
    line = "We use your email only to reply to you. Privacy policy: https://acme.example/privacy"
    session, replies = chat(widget_client, "quote", "Ana", "ana@example.com")
    assert replies[1].endswith(line)
    assert replies[1].startswith("Thanks, Ana! What's the best email")
    # The site changes its wording later: the lead keeps what the visitor was shown.
    site.privacy_text = "Something else."
    site.save()
    session.refresh_from_db()
    assert session.lead_consent_text == line


def test_no_privacy_line_stores_no_consent(site, widget_client):
    session, replies = chat(widget_client, "quote", "Ana", "ana@example.com")
    assert replies[1] == "Thanks, Ana! What's the best email to reach you?"
    assert session.lead_consent_text == ""


def test_webhook_payload_carries_email_quality_and_consent(site, widget_client):
    WebhookEndpoint.objects.create(name="crm", url="http://127.0.0.1:9/lead")
    site.privacy_text = "We only use it to reply."
    site.save()
    chat(widget_client, "quote", "Ana", "info@acme.example")
    lead = Delivery.objects.get().payload["data"]["lead"]
    assert lead["email_quality"] == "role"
    assert lead["consent_text"] == "We only use it to reply."


def test_network_backend_email_is_screened_by_the_site_policy(widget_client, dns_server):
    from widget import backends
    from widget.backends import AgentReply, LeadFields
    from widget.backends.fake import FakeBackend

    SiteFactory(
        public_key="policy-site",
        allowed_origins=["https://landing.example.com"],
        email_refuse_no_mx=True,
    )
    reply = AgentReply(text="Got it!", lead=LeadFields(name="Ana", email="ana@nomail.example"))
    with backends.override("scripted", FakeBackend([reply])):
        session, replies = chat(
            widget_client, "I'm Ana, ana@nomail.example", site_key="policy-site"
        )
    assert (
        replies[-1]
        == "nomail.example doesn't seem to receive email. Could you give me another email?"
    )
    assert session.lead_name == "Ana"
    assert session.lead_email == ""


def test_site_checks_its_phone_region_and_privacy_link():
    from django.core.exceptions import ValidationError

    site = SiteFactory.build(phone_default_region="zz", privacy_url="ftp://acme.example/p")
    with pytest.raises(ValidationError) as caught:
        site.clean()
    assert set(caught.value.message_dict) == {"phone_default_region", "privacy_url"}
    site = SiteFactory.build(phone_default_region="pt")
    site.clean()
    assert site.phone_default_region == "PT"
