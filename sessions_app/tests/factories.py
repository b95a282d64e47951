import factory
from django.utils import timezone

from sessions_app.leads import lead_key
from sessions_app.models import AutomationError, ChatMessage, ChatSession, MessageRole
from sessions_app.services import hash_visitor_token
from widget.tests.factories import SiteFactory

VISITOR_TOKEN = "visitor-token-for-tests"


class ChatSessionFactory(factory.django.DjangoModelFactory[ChatSession]):
    class Meta:
        model = ChatSession

    site = factory.SubFactory(SiteFactory)
    visitor_token_hash = hash_visitor_token(VISITOR_TOKEN)
    page_url = "https://landing.example.com/offer"
    started_at = factory.LazyFunction(timezone.now)
    last_activity_at = factory.SelfAttribute("started_at")
    updated_at = factory.SelfAttribute("started_at")
    lead_email = ""
    # As lead_capture sets it: a factory row with an email is a person on the Leads page.
    lead_key = factory.LazyAttribute(lambda o: lead_key(o.lead_email))


class ChatMessageFactory(factory.django.DjangoModelFactory[ChatMessage]):
    class Meta:
        model = ChatMessage

    session = factory.SubFactory(ChatSessionFactory)
    role = MessageRole.VISITOR
    text = factory.Sequence(lambda n: f"Message number {n}")


class AutomationErrorFactory(factory.django.DjangoModelFactory[AutomationError]):
    class Meta:
        model = AutomationError

    workflow = "Lead intake"
    node = "HTTP Request"
    message = "Request failed with status code 500"
