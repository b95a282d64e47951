"""Which finished sessions go into the QA queue: the admins' rules (global, and per site), and
each session's decision.

Imported by `qa.models`, so the tables belong to app `qa`. Written only by
`qa.sampling.services`.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

SAMPLING_RULE_PK = 1


class RuleFields(models.Model):
    """What a sampling rule says: the global rule's and each site's own."""

    automation_errors = models.BooleanField(
        default=True, help_text="Always review sessions with an automation error."
    )
    needs_human = models.BooleanField(
        default=True, help_text="Always review sessions where the visitor asked for a person."
    )
    email_incomplete = models.BooleanField(
        default=True,
        help_text="Always review sessions that captured an email but were left incomplete.",
    )
    keywords = models.TextField(
        blank=True,
        default="",
        help_text=(
            "Always review sessions whose messages contain one of these words or phrases "
            "(one per line, case-insensitive)."
        ),
    )
    random_percent = models.PositiveSmallIntegerField(
        default=100,
        validators=[MaxValueValidator(100)],
        help_text="Of the sessions no rule above picks, the share to review (0-100).",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def keyword_list(self) -> list[str]:
        seen: dict[str, None] = {}
        for line in self.keywords.splitlines():
            word = line.strip().lower()
            if word:
                seen.setdefault(word, None)
        return list(seen)


class SamplingRule(RuleFields):
    """The global sampling rule (a singleton, row 1): what always goes to QA, and how much else,
    for every site without a rule of its own (`SiteSamplingRule`).

    Until an admin saves it, the defaults apply: every rule on and 100% of the rest, so every
    session is in the queue, as before sampling existed.
    """

    class Meta:
        verbose_name = "sampling rule"
        verbose_name_plural = "sampling rule"
        constraints = [
            models.CheckConstraint(
                condition=Q(pk=SAMPLING_RULE_PK), name="sampling_rule_singleton"
            ),
            models.CheckConstraint(
                condition=Q(random_percent__lte=100), name="sampling_rule_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return "Sampling rule"


class SiteSamplingRule(RuleFields):
    """A site's own sampling rule, in place of the global one for that site's sessions (a busy
    site sampled at 10% beside a new one reviewed in full). Deleting it puts the site back on
    the global rule."""

    # A table of its own rather than a site column on the singleton: the global rule stays row
    # 1 (its check constraint), and a site's rows never meet the primary key sequence it skips.
    site = models.OneToOneField(
        "widget.Site", on_delete=models.CASCADE, related_name="qa_sampling_rule"
    )

    class Meta:
        verbose_name = "site sampling rule"
        verbose_name_plural = "site sampling rules"
        ordering = ["site__name", "site_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(random_percent__lte=100), name="site_sampling_rule_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Sampling rule of {self.site}"


class SessionSample(models.Model):
    """Whether a finished session is in the QA queue, why, and when that was decided."""

    session = models.OneToOneField(
        "sessions_app.ChatSession",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="qa_sample",
    )
    sampled = models.BooleanField()
    # Why: "automation_error", "needs_human", "email_incomplete", "keyword:<word>", "random";
    # empty when not sampled.
    reasons = models.JSONField(default=list, blank=True)
    # The random share in force at the decision (a not-sampled session says "outside 20%").
    random_percent = models.PositiveSmallIntegerField(default=100)
    decided_at = models.DateTimeField(default=timezone.now)
    # The transcript's length at the decision: a not-sampled session that gets new messages is
    # decided again once it is quiet again (a new keyword or error may put it in the queue).
    message_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{'sampled' if self.sampled else 'not sampled'}: {', '.join(self.reasons)}"
