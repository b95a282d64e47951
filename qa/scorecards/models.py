"""Scorecards: what a reviewer judges beyond pass / fail (imported by `qa.models`).

Criteria and failure categories are configuration, edited by admins in the console; a
`Scorecard` is one reviewer's judgement of one session (their scores, the failure categories
they picked and their verdict on each lead field), replaced whenever that reviewer submits the
QA panel again. A `MessageAnnotation` pins a note (and the reply the agent should have given) to
one AI message. All writes go through `qa.scorecards.services`.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class CriterionKind(models.TextChoices):
    PASS_FAIL = "pass_fail", "Pass / fail"
    SCORE = "score", "Score 1-5"


# The values a score of each kind may take: pass / fail is stored as 1 / 0.
SCORE_MIN, SCORE_MAX = 1, 5
FAIL, PASS = 0, 1
CRITERION_RANGES: dict[str, tuple[int, int]] = {
    CriterionKind.PASS_FAIL: (FAIL, PASS),
    CriterionKind.SCORE: (SCORE_MIN, SCORE_MAX),
}


class Criterion(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(
        max_length=16, choices=CriterionKind.choices, default=CriterionKind.SCORE
    )
    # Deactivate instead of deleting: old scorecards keep their scores and their meaning.
    active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "scorecard criterion"
        verbose_name_plural = "scorecard criteria"
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def value_range(self) -> tuple[int, int]:
        return CRITERION_RANGES[self.kind]


class FailureCategory(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "failure category"
        verbose_name_plural = "failure categories"
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name


class LeadVerdict(models.TextChoices):
    CORRECT = "correct", "Correct"
    WRONG = "wrong", "Wrong"
    MISSING = "missing", "Missing"
    INVENTED = "invented", "Invented"


# The captured lead fields a reviewer judges: the verdict's field on Scorecard, and how the
# console labels it. `need` is the scripted agent's lead_data["need"].
LEAD_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("need", "Need"),
)


def _verdict_field() -> models.CharField:
    # Blank: the reviewer did not judge this field (it does not count for the accuracy).
    return models.CharField(max_length=16, choices=LeadVerdict.choices, blank=True, default="")


class Scorecard(models.Model):
    """One reviewer's judgement of one session (their latest submit of the QA panel)."""

    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.CASCADE,
        related_name="scorecards",
        # scorecard_unique_reviewer starts with session.
        db_index=False,
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    categories = models.ManyToManyField(FailureCategory, blank=True, related_name="scorecards")
    name_verdict = _verdict_field()
    email_verdict = _verdict_field()
    phone_verdict = _verdict_field()
    need_verdict = _verdict_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "reviewer"], name="scorecard_unique_reviewer"
            )
        ]

    def __str__(self) -> str:
        return f"Scorecard of session {self.session_id} by {self.reviewer_id}"

    def verdicts(self) -> list[tuple[str, str, str]]:
        """(field, label, verdict) for every lead field, "" where not judged."""
        return [(f, label, getattr(self, f"{f}_verdict")) for f, label in LEAD_FIELDS]


class CriterionScore(models.Model):
    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="scores")
    # PROTECT: a criterion in use is deactivated, never deleted (the admin offers no delete).
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="+")
    value = models.SmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scorecard", "criterion"], name="criterion_score_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.criterion_id}: {self.value}"


class MessageAnnotation(models.Model):
    """A reviewer's note pinned to one AI message, with the reply it should have been."""

    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.CASCADE,
        related_name="annotations",
        db_index=False,  # annotation_session_at starts with session
    )
    message = models.ForeignKey(
        "sessions_app.ChatMessage", on_delete=models.CASCADE, related_name="annotations"
    )
    note = models.TextField()
    expected_reply = models.TextField(blank=True, default="")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["session", "at", "id"], name="annotation_session_at")]

    def __str__(self) -> str:
        return f"Annotation on message {self.message_id}"
