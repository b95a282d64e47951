"""Scorecard text is rendered as text: annotations, criteria and category names, other
reviewers' cards, the flag page (the audit of qa/tests/test_xss.py, which can fail)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from qa.models import Criterion, FailureCategory
from qa.scorecards.services import ScorecardInput, annotation_add, scorecard_save
from qa.tests.test_xss import PAYLOADS, audit
from sessions_app.models import MessageRole

pytestmark = pytest.mark.django_db


@pytest.fixture
def hostile_scorecards(make_conversation, qa_user, make_user):
    session = make_conversation(name="Vera", visitor=tuple(PAYLOADS[:3]))
    criterion = Criterion.objects.create(name=PAYLOADS[0], description=PAYLOADS[2])
    category = FailureCategory.objects.create(name=PAYLOADS[1], description=PAYLOADS[8])
    other = make_user("qa", username="sam-qa")
    scorecard_save(
        session=session,
        by=other,
        card=ScorecardInput(scores={criterion.pk: 3}, category_ids=[category.pk]),
    )
    for index, message in enumerate(session.messages.filter(role=MessageRole.AI)):
        annotation_add(
            session=session,
            message_id=message.pk,
            by=qa_user,
            note=PAYLOADS[(3 + index) % len(PAYLOADS)],
            expected_reply=PAYLOADS[(6 + index) % len(PAYLOADS)],
        )
    return session


def test_change_view_renders_annotations_and_scorecards_inert(qa_client, hostile_scorecards):
    url = reverse("admin:sessions_app_chatsession_change", args=[hostile_scorecards.pk])
    text = "".join(audit(qa_client.get(url)).text)
    for payload in PAYLOADS[:9]:
        assert payload in text, payload


def test_flag_page_renders_category_names_inert(qa_client, hostile_scorecards):
    response = qa_client.post(
        reverse("admin:sessions_app_chatsession_changelist") + "?qa_status=all",
        {"action": "flag_issue", ACTION_CHECKBOX_NAME: [hostile_scorecards.pk], "index": 0},
    )
    assert PAYLOADS[1] in "".join(audit(response).text)


def test_criteria_admin_renders_names_inert(admin_client_role, hostile_scorecards):
    audit(admin_client_role.get(reverse("admin:qa_criterion_changelist")))
    audit(admin_client_role.get(reverse("admin:qa_failurecategory_changelist")))
