from django.conf import settings
from django.db import models
from django.utils import timezone

from sessions_app.models import QAStatus


class QAHistory(models.Model):
    """One QA change of a session: a status move, a QA note / developer feedback / scorecard
    saved, or an annotation added.

    Written only by `qa.services`, in the transaction that makes the change, so the history can
    never disagree with the session's QA fields.
    """

    class Kind(models.TextChoices):
        MOVE = "move", "Status change"
        NOTE = "note", "QA note"
        FEEDBACK = "feedback", "Developer feedback"
        # qa.claims: who took a session for review, or was given it by an admin.
        CLAIM = "claim", "Review claim"
        ASSIGN = "assign", "Assignment"
        # qa.scorecards: a reviewer's scorecard saved, a note pinned to an AI message.
        SCORECARD = "scorecard", "Scorecard"
        ANNOTATION = "annotation", "Annotation"

    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.CASCADE,
        related_name="qa_history",
        # qa_history_session_at below starts with session: a second index would only cost writes.
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MOVE)
    from_status = models.CharField(max_length=16, choices=QAStatus.choices)
    to_status = models.CharField(max_length=16, choices=QAStatus.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(default=timezone.now)
    # The QA note given with a move (or saved alone), or the developer feedback for `fixed`.
    note = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "QA history entry"
        verbose_name_plural = "QA history"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["session", "-at", "-id"], name="qa_history_session_at")]

    def __str__(self) -> str:
        if self.kind == self.Kind.MOVE:
            return f"{self.from_status} -> {self.to_status}"
        return self.get_kind_display()


class ReviewClaim(models.Model):
    """Who is reviewing a session now (a claim with an end) and who it is assigned to.

    One row per session, written only by `qa.claims` with the session row locked, so two
    reviewers opening the same session at once cannot both hold it. A claim whose `claimed_until`
    has passed is no claim: nothing has to clear it, the next reviewer simply takes it over.
    """

    session = models.OneToOneField(
        "sessions_app.ChatSession", on_delete=models.CASCADE, related_name="review_claim"
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Admins (superusers) hold it; a group can be given it by hand.
        permissions = [("assign_reviewclaim", "Can assign sessions to reviewers")]
        indexes = [
            # "My queue": claimed by me (still live) or assigned to me.
            models.Index(fields=["claimed_by", "claimed_until"], name="qa_claim_by_until"),
            models.Index(fields=["assigned_to"], name="qa_claim_assigned_to"),
        ]

    def __str__(self) -> str:
        return f"claim of session {self.session_id}"


# The scorecard, replay and sampling models live in their subpackages (qa/scorecards/,
# qa/replay/, qa/sampling/) but belong to this app: imported here so the app registry finds them.
from qa.digest.models import QADigest  # noqa: E402
from qa.replay.models import Replay, ReplayMessage  # noqa: E402
from qa.sampling.models import SamplingRule, SessionSample, SiteSamplingRule  # noqa: E402
from qa.scorecards.models import (  # noqa: E402
    Criterion,
    CriterionScore,
    FailureCategory,
    MessageAnnotation,
    Scorecard,
)

__all__ = [
    "Criterion",
    "CriterionScore",
    "FailureCategory",
    "MessageAnnotation",
    "QADigest",
    "QAHistory",
    "Replay",
    "ReplayMessage",
    "ReviewClaim",
    "SamplingRule",
    "Scorecard",
    "SessionSample",
    "SiteSamplingRule",
]
