"""The QA console's fixtures (qa/tests/conftest.py), plus scorecard configuration."""

import pytest

from qa.models import Criterion, FailureCategory
from qa.scorecards.models import CriterionKind
from qa.tests.conftest import (  # noqa: F401  (fixtures)
    admin_client_role,
    issue_category,
    login,
    make_conversation,
    qa_client,
    site,
)


@pytest.fixture
def accurate(db) -> Criterion:
    return Criterion.objects.create(
        name="Answered accurately", kind=CriterionKind.PASS_FAIL, order=1
    )


@pytest.fixture
def tone(db) -> Criterion:
    return Criterion.objects.create(name="Tone", kind=CriterionKind.SCORE, order=2)


@pytest.fixture
def hallucination(db) -> FailureCategory:
    return FailureCategory.objects.get(name="Hallucination")  # seeded by qa 0004


@pytest.fixture
def missed_lead(db) -> FailureCategory:
    return FailureCategory.objects.get(name="Missed lead")
