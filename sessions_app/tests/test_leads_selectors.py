"""The Leads selector: one row per person, figures over their conversations, fixed queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions_app import leads_selectors, services
from sessions_app.leads import lead_key
from sessions_app.models import (
    ArchiveStatus,
    Channel,
    ChatSession,
    CompletionStatus,
    DeliveryState,
    QAStatus,
)
from sessions_app.selectors import SessionFilters
from sessions_app.tests.factories import ChatMessageFactory, ChatSessionFactory
from widget.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db

ALL = SessionFilters(archive="all")


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


@pytest.fixture
def people():
    """Rosa: three visits on two sites and two channels, her name only on the older ones;
    Sven: one visit; an anonymous visitor."""
    acme, beta = SiteFactory(name="Acme"), SiteFactory(name="Beta")
    rosa_first = ChatSessionFactory(
        site=acme,
        started_at=ago(days=10),
        lead_name="Rosa L",
        lead_email="Rosa@example.com",
        lead_phone="+1 555 0100",
        completion_status=CompletionStatus.COMPLETE,
        lead_captured_at=ago(days=10),
        qa_status=QAStatus.PASSED,
        delivery_state=DeliveryState.DELIVERED,
    )
    rosa_second = ChatSessionFactory(
        site=beta,
        channel=Channel.MESSENGER,
        started_at=ago(days=5),
        lead_name="Rosa Lopez",
        lead_email="rosa@example.com",
        completion_status=CompletionStatus.COMPLETE,
        lead_captured_at=ago(days=5),
    )
    rosa_latest = ChatSessionFactory(
        site=acme,
        started_at=ago(days=1),
        lead_email="ROSA@example.com",
        completion_status=CompletionStatus.INCOMPLETE,
        qa_status=QAStatus.ISSUE,
        delivery_state=DeliveryState.FAILED,
    )
    sven = ChatSessionFactory(
        site=beta,
        started_at=ago(days=3),
        lead_name="Sven Berg",
        lead_email="sven@example.com",
        completion_status=CompletionStatus.COMPLETE,
    )
    ChatMessageFactory(session=rosa_second, text="I want the premium plan")
    anonymous = ChatSessionFactory(site=acme, started_at=ago(hours=1))
    return locals()


def test_one_row_per_person_with_latest_name_and_statuses(people):
    page = leads_selectors.leads_page(ALL)
    assert page.count == 2
    rosa, sven = page.leads  # latest activity first
    assert rosa.key == lead_key("rosa@example.com")
    assert rosa.conversations == 3
    assert rosa.name == "Rosa Lopez"  # the latest non-empty name
    assert rosa.phone == "+1 555 0100"
    assert rosa.email == "ROSA@example.com"  # as the latest visit wrote it
    assert rosa.latest.pk == people["rosa_latest"].pk
    assert rosa.latest.completion_status == CompletionStatus.INCOMPLETE
    assert rosa.latest.qa_status == QAStatus.ISSUE
    assert rosa.latest.delivery_state == DeliveryState.FAILED
    assert rosa.first_seen == people["rosa_first"].started_at
    assert rosa.last_seen == people["rosa_latest"].last_activity_at
    assert rosa.last_captured_at == people["rosa_second"].lead_captured_at
    assert [s.name for s in rosa.sites] == ["Acme", "Beta"]
    assert rosa.channels == ["messenger", "web"]
    assert (sven.name, sven.conversations, sven.channels) == ("Sven Berg", 1, ["web"])


def test_filters_pick_people_and_rows_still_cover_every_conversation(people):
    by_site = leads_selectors.leads_page(SessionFilters(site=people["beta"].pk, archive="all"))
    assert {lead.name: lead.conversations for lead in by_site.leads} == {
        "Rosa Lopez": 3,
        "Sven Berg": 1,
    }
    messenger = leads_selectors.leads_page(SessionFilters(channel=("messenger",)))
    assert [lead.name for lead in messenger.leads] == ["Rosa Lopez"]
    assert messenger.leads[0].conversations == 3
    qa = leads_selectors.leads_page(SessionFilters(qa_status=(QAStatus.PASSED,)))
    assert [lead.name for lead in qa.leads] == ["Rosa Lopez"]
    recent = leads_selectors.leads_page(SessionFilters(date_from=ago(days=4).date()))
    assert {lead.name for lead in recent.leads} == {"Rosa Lopez", "Sven Berg"}
    old = leads_selectors.leads_page(
        SessionFilters(date_from=ago(days=11).date(), date_to=ago(days=9).date())
    )
    assert [lead.name for lead in old.leads] == ["Rosa Lopez"]


def test_search_every_word_in_some_conversation(people):
    assert [
        lead.name for lead in leads_selectors.leads_page(SessionFilters(search="premium")).leads
    ] == ["Rosa Lopez"]
    both_words = leads_selectors.leads_page(SessionFilters(search="sven berg"))
    assert [lead.name for lead in both_words.leads] == ["Sven Berg"]
    assert leads_selectors.leads_page(SessionFilters(search="sven premium")).count == 0


def test_sort_orders(people):
    def names(ordering):
        page = leads_selectors.leads_page(ALL, ordering=ordering)
        return [lead.name for lead in page.leads]

    assert names("-last_seen") == ["Rosa Lopez", "Sven Berg"]
    assert names("last_seen") == ["Sven Berg", "Rosa Lopez"]
    assert names("first_seen") == ["Rosa Lopez", "Sven Berg"]
    assert names("-first_seen") == ["Sven Berg", "Rosa Lopez"]
    assert names("-conversations") == ["Rosa Lopez", "Sven Berg"]
    assert names("-email") == ["Sven Berg", "Rosa Lopez"]
    with pytest.raises(ValueError):
        leads_selectors.leads_page(ALL, ordering="lead_key; drop")


def test_pagination_and_a_page_past_the_end(people):
    first = leads_selectors.leads_page(ALL, page=1, page_size=1)
    second = leads_selectors.leads_page(ALL, page=2, page_size=1)
    past = leads_selectors.leads_page(ALL, page=3, page_size=1)
    assert (first.count, first.num_pages) == (2, 2)
    assert [first.leads[0].name, second.leads[0].name] == ["Rosa Lopez", "Sven Berg"]
    assert past.leads == [] and past.count == 2


def test_trashed_conversations_do_not_count_and_archived_ones_do(people):
    services.session_delete(session=people["rosa_latest"], by=None)
    services.session_archive(session=people["rosa_first"], by=None)
    rosa = leads_selectors.lead_detail(key=lead_key("rosa@example.com"))
    assert rosa.conversations == 2
    assert rosa.latest.pk == people["rosa_second"].pk
    # The default filters (active sessions) still list her through her active visit.
    assert "Rosa Lopez" in [
        lead.name for lead in leads_selectors.leads_page(SessionFilters()).leads
    ]
    services.session_delete(session=people["sven"], by=None)
    assert leads_selectors.leads_count(ALL) == 1


def test_erased_and_purged_people_are_gone(people):
    services.lead_erase(email="rosa@example.com")
    page = leads_selectors.leads_page(ALL)
    assert [lead.name for lead in page.leads] == ["Sven Berg"]
    assert not ChatSession.objects.filter(lead_key=lead_key("rosa@example.com")).exists()
    with pytest.raises(ChatSession.DoesNotExist):
        leads_selectors.lead_detail(key=lead_key("rosa@example.com"))
    ChatSession.objects.filter(pk=people["sven"].pk).update(started_at=ago(days=800))
    services.sessions_purge(older_than=timedelta(days=365))
    assert leads_selectors.leads_count(ALL) == 0
    assert not ChatSession.objects.exclude(lead_key="").exists()


def test_lead_capture_makes_two_visits_one_person():
    first, second = ChatSessionFactory(), ChatSessionFactory()
    services.lead_capture(session=first, name="Ana", email="Ana.Silva@Example.com")
    services.lead_capture(session=second, email="ana.silva@example.COM ")
    page = leads_selectors.leads_page(ALL)
    assert page.count == 1
    assert page.leads[0].conversations == 2
    assert page.leads[0].name == "Ana"


def test_lead_sessions_lists_every_conversation_newest_first(people):
    rows = list(leads_selectors.lead_sessions(key=lead_key("rosa@example.com")))
    assert [s.pk for s in rows] == [
        people["rosa_latest"].pk,
        people["rosa_second"].pk,
        people["rosa_first"].pk,
    ]


def _bulk_people(count: int, site) -> None:
    """`count` sessions for count // 2 people (two visits each), inserted in one statement."""
    now = timezone.now()
    ChatSession.objects.bulk_create(
        ChatSession(
            site=site,
            started_at=now - timedelta(minutes=i),
            last_activity_at=now - timedelta(minutes=i),
            lead_name=f"Person {i // 2}",
            lead_email=f"person{i // 2}@example.com",
            lead_key=lead_key(f"person{i // 2}@example.com"),
            completion_status=CompletionStatus.COMPLETE,
            channel=Channel.WEB if i % 2 else Channel.MESSENGER,
        )
        for i in range(count)
    )


def test_page_query_count_is_flat_from_10_to_10000_sessions():
    site = SiteFactory()
    filters = SessionFilters(archive=ArchiveStatus.ACTIVE, search="person")
    _bulk_people(10, site)
    with CaptureQueriesContext(connection) as small:
        page = leads_selectors.leads_page(filters, page_size=50)
    assert page.count == 5 and len(page.leads) == 5
    _bulk_people(10_000, site)
    with CaptureQueriesContext(connection) as large:
        page = leads_selectors.leads_page(filters, page_size=50)
    assert page.count == 5000 and len(page.leads) == 50
    assert page.leads[0].conversations == 4  # person 0 of both batches
    assert len(large.captured_queries) == len(small.captured_queries) == 4


@pytest.mark.parametrize("archive", [ArchiveStatus.ACTIVE, ArchiveStatus.ARCHIVED, "all"])
def test_the_opening_page_shortcut_agrees_with_the_filtered_path(people, archive):
    services.session_archive(session=people["sven"], by=None)

    def summary(filters):
        page = leads_selectors.leads_page(filters)
        return page.count, [(lead.key, lead.conversations, lead.name) for lead in page.leads]

    opening = summary(SessionFilters(archive=archive))
    # A filter that keeps every session sends the selector down the semi-join path.
    filtered = summary(SessionFilters(archive=archive, date_from=ago(days=400).date()))
    assert opening == filtered
    expected = {
        ArchiveStatus.ACTIVE: ["Rosa Lopez"],
        ArchiveStatus.ARCHIVED: ["Sven Berg"],
        "all": ["Rosa Lopez", "Sven Berg"],
    }[archive]
    assert [name for _, _, name in opening[1]] == expected
