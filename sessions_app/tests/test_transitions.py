"""The shared transition steps: lock, check_move with each caller's wording, copy_state.

The refusals are written out: they are what the API, the console and the dashboard show, and the
same words they had before the three copies became one.
"""

import pytest
from django.db import transaction

from qa.services import QA_WORDING
from sessions_app.delivery.outbox import DELIVERY_WORDING
from sessions_app.errors import TransitionNotAllowed
from sessions_app.models import (
    ARCHIVE_MOVES,
    COMPLETION_MOVES,
    DELIVERY_MOVES,
    QA_MOVES,
    ArchiveStatus,
    ChatSession,
    CompletionStatus,
    DeliveryStatus,
    QAStatus,
)
from sessions_app.services import ARCHIVE_WORDING, COMPLETION_WORDING
from sessions_app.tests.factories import ChatSessionFactory
from sessions_app.transitions import MoveWording, check_move, copy_state, lock


def refusal(table, current, target, wording) -> str:
    with pytest.raises(TransitionNotAllowed) as raised:
        check_move(table, current, target, wording=wording)
    return str(raised.value)


@pytest.mark.parametrize(
    ("table", "current", "target", "wording", "expected"),
    [
        (
            ARCHIVE_MOVES,
            "archived",
            ArchiveStatus.ARCHIVED,
            ARCHIVE_WORDING,
            "Cannot move archive status from 'archived' to 'archived'. "
            "Allowed from 'archived': active.",
        ),
        (
            COMPLETION_MOVES,
            "complete",
            CompletionStatus.COMPLETE,
            COMPLETION_WORDING,
            "Cannot move completion from 'complete' to 'complete'. Allowed from 'complete': none.",
        ),
        (
            COMPLETION_MOVES,
            "unknown",
            CompletionStatus.COMPLETE,
            COMPLETION_WORDING,
            "Cannot move completion from 'unknown' to 'complete'. Allowed from 'unknown': none.",
        ),
        (
            QA_MOVES,
            "issue",
            QAStatus.PASSED,
            QA_WORDING,
            "Cannot move a session from issue to passed. Allowed from issue: fixed.",
        ),
        (
            # Listed in the statuses' own order (passed before issue), not sorted.
            QA_MOVES,
            "unchecked",
            QAStatus.FIXED,
            QA_WORDING,
            "Cannot move a session from unchecked to fixed. Allowed from unchecked: passed, issue.",
        ),
        (
            QA_MOVES,
            "issue",
            QAStatus.ISSUE,
            QA_WORDING,
            "Cannot move a session from issue to issue. Allowed from issue: fixed.",
        ),
        (
            DELIVERY_MOVES,
            "pending",
            DeliveryStatus.DELIVERED,
            DELIVERY_WORDING,
            "Cannot move a delivery from 'pending' to 'delivered'.",
        ),
        (
            DELIVERY_MOVES,
            "delivered",
            DeliveryStatus.CANCELLED,
            DELIVERY_WORDING,
            "Cannot move a delivery from 'delivered' to 'cancelled'.",
        ),
    ],
)
def test_refused_moves_keep_their_wording(table, current, target, wording, expected):
    assert refusal(table, current, target, wording) == expected


def test_a_hint_follows_a_move_from_its_status():
    wording = MoveWording("a delivery", list_allowed=False, hints={"sending": "Wait for it."})
    table = {"sending": {"pending"}, "pending": set()}
    assert refusal(table, "sending", "failed", wording) == (
        "Cannot move a delivery from 'sending' to 'failed'. Wait for it."
    )
    assert refusal(table, "pending", "failed", wording) == (
        "Cannot move a delivery from 'pending' to 'failed'."
    )
    assert DELIVERY_WORDING.hints == {DeliveryStatus.SENDING: "It is being sent right now."}


def test_an_allowed_move_passes():
    check_move(ARCHIVE_MOVES, "active", ArchiveStatus.ARCHIVED, wording=ARCHIVE_WORDING)
    check_move(QA_MOVES, "unchecked", QAStatus.ISSUE, wording=QA_WORDING)
    check_move(DELIVERY_MOVES, "failed", DeliveryStatus.PENDING, wording=DELIVERY_WORDING)


@pytest.mark.django_db
def test_lock_reads_the_row_as_stored_and_copy_state_hands_it_back():
    session = ChatSessionFactory(lead_name="Ana")
    ChatSession.objects.filter(pk=session.pk).update(lead_name="Ana Lima")
    with transaction.atomic():
        locked = lock(session)
    assert locked is not session
    assert (locked.lead_name, session.lead_name) == ("Ana Lima", "Ana")
    copy_state(locked, session)
    assert session.lead_name == "Ana Lima"
    assert session._state is not locked._state  # the caller's instance keeps its own ORM state


@pytest.mark.django_db
def test_lock_of_a_removed_row_raises_does_not_exist():
    session = ChatSessionFactory()
    ChatSession.objects.filter(pk=session.pk).delete()
    with pytest.raises(ChatSession.DoesNotExist):
        lock(session)


@pytest.mark.django_db
def test_lock_with_related_joins_them_in_the_same_query(django_assert_num_queries):
    from sessions_app.models import Delivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(name="n8n", url="https://n8n.example.com/hook")
    delivery = Delivery.objects.create(
        event_id="evt_1", event_type="lead.captured", kind="webhook", endpoint=endpoint, payload={}
    )
    with django_assert_num_queries(1):
        locked = lock(delivery, related=["endpoint"])
        assert locked.endpoint.name == "n8n"
