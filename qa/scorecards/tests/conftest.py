"""The QA console's fixtures (qa/tests/conftest.py), plus scorecard configuration."""

import importlib

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


@pytest.fixture(autouse=True)
def seeded_categories(db) -> None:
    """The categories qa 0004 seeds, again: a transactional (browser) test that ran before in
    the same database flushed them. The migration's own function, so it is tested too."""
    from django.apps import apps

    migration = importlib.import_module("qa.migrations.0004_scorecards")
    migration.seed_categories(apps, None)


@pytest.fixture
def hallucination(seeded_categories) -> FailureCategory:
    return FailureCategory.objects.get(name="Hallucination")


@pytest.fixture
def missed_lead(seeded_categories) -> FailureCategory:
    return FailureCategory.objects.get(name="Missed lead")
