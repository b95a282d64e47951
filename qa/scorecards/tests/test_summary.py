"""The console's summary line on a known data set: pass rate and lead extraction accuracy."""

import pytest
from django.urls import reverse
from django.utils import timezone

from qa.scorecards.selectors import qa_summary
from qa.scorecards.services import ScorecardInput, scorecard_save
from sessions_app.models import QAStatus
from sessions_app.tests.factories import ChatSessionFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sessions_app_chatsession_changelist")


@pytest.fixture
def known_data(qa_user, make_user):
    """Written out by hand (never derived from the code under test):

    sessions: 3 passed, 1 issue, 1 fixed (5 reviewed), 2 unchecked, 1 passed in the trash.
    lead verdicts (judged / correct), the trashed session's left out:
      A by quinn: name correct, email correct, phone missing, need -       -> 3 / 2
      A by sam:   name correct                                             -> 1 / 1
      B by quinn: name invented, email correct, phone correct, need wrong  -> 4 / 2
      C by quinn: name correct, email correct                              -> 2 / 2
      trashed:    name correct, email correct                              -> (left out)
    pass rate 3 / 5 = 60 %; lead extraction accuracy 7 / 10 = 70 %.
    """
    sam = make_user("qa", username="sam-qa")
    a, b, c = (ChatSessionFactory(qa_status=QAStatus.PASSED) for _ in range(3))
    ChatSessionFactory(qa_status=QAStatus.ISSUE)
    ChatSessionFactory(qa_status=QAStatus.FIXED)
    ChatSessionFactory.create_batch(2, qa_status=QAStatus.UNCHECKED)
    trashed = ChatSessionFactory(qa_status=QAStatus.PASSED)

    def judge(session, by, **verdicts):
        scorecard_save(session=session, by=by, card=ScorecardInput(verdicts=verdicts))

    judge(a, qa_user, name="correct", email="correct", phone="missing")
    judge(a, sam, name="correct")
    judge(b, qa_user, name="invented", email="correct", phone="correct", need="wrong")
    judge(c, qa_user, name="correct", email="correct")
    judge(trashed, qa_user, name="correct", email="correct")
    trashed.deleted_at = timezone.now()
    trashed.save(update_fields=["deleted_at"])


def test_summary_figures_on_a_known_data_set(known_data):
    summary = qa_summary()
    assert (summary.reviewed, summary.passed) == (5, 3)
    assert (summary.judged_fields, summary.correct_fields) == (10, 7)
    assert summary.pass_rate == pytest.approx(0.6)
    assert summary.lead_accuracy == pytest.approx(0.7)


def test_changelist_shows_pass_rate_beside_lead_accuracy(qa_client, known_data):
    html = qa_client.get(CHANGELIST).content.decode()
    assert '<strong data-stat="pass-rate">60%</strong>' in html
    assert "of 5 reviewed sessions" in html
    assert '<strong data-stat="lead-accuracy">70%</strong>' in html
    assert "of 10 judged lead fields" in html


def test_summary_without_reviews_says_so(qa_client):
    ChatSessionFactory()
    summary = qa_summary()
    assert (summary.pass_rate, summary.lead_accuracy) == (None, None)
    html = qa_client.get(CHANGELIST).content.decode()
    assert '<strong data-stat="pass-rate">-</strong>' in html
    assert '<strong data-stat="lead-accuracy">-</strong>' in html


def test_summary_is_two_queries_whatever_the_data(qa_user, django_assert_num_queries):
    ChatSessionFactory(qa_status=QAStatus.PASSED)
    with django_assert_num_queries(2):
        qa_summary()
    for session in ChatSessionFactory.create_batch(30, qa_status=QAStatus.ISSUE):
        scorecard_save(session=session, by=qa_user, card=ScorecardInput(verdicts={"name": "wrong"}))
    with django_assert_num_queries(2):
        assert qa_summary().judged_fields == 30
