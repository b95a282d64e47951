"""A replay: a session's visitor turns asked again of the site's current agent, in a sandbox.

Imported by `qa.models`, so the tables belong to app `qa`. Written only by `qa.replay.services`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReplayTrigger(models.TextChoices):
    FIXED = "fixed", "Marked fixed"
    MANUAL = "manual", "Asked for in the console"


# Allowed moves, next to the model. `running -> running` is a worker taking over a claim whose
# lease ran out (its worker died); done and failed are final (ask for a new replay instead).
REPLAY_MOVES: dict[str, set[str]] = {
    ReplayStatus.QUEUED: {ReplayStatus.RUNNING, ReplayStatus.FAILED},
    ReplayStatus.RUNNING: {ReplayStatus.RUNNING, ReplayStatus.DONE, ReplayStatus.FAILED},
    ReplayStatus.DONE: set(),
    ReplayStatus.FAILED: set(),
}
REPLAY_OPEN = (ReplayStatus.QUEUED, ReplayStatus.RUNNING)


class Replay(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # SET_NULL: a replay outlives the erasure of its session, as a failed record saying so.
    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replays",
    )
    status = models.CharField(
        max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED
    )
    trigger = models.CharField(max_length=16, choices=ReplayTrigger.choices)
    # Why it failed, in words for the console ("n8n webhook could not be reached: ...").
    reason = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # The claim (sessions_app.transitions.claim): who runs it, until when, fenced by the token.
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    # The agent version replayed against (the site's configuration when the replay ran).
    agent_backend = models.CharField(max_length=32, blank=True, default="")
    agent_model = models.CharField(max_length=200, blank=True, default="")
    agent_config_hash = models.CharField(max_length=64, blank=True, default="")
    tokens_used = models.PositiveIntegerField(default=0)
    visitor_turns = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One replay of a session open at a time: asking again while one is queued or
            # running returns it, and two workers can never run two replays of one session.
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(status__in=["queued", "running"]),
                name="replay_one_open_per_session",
            )
        ]
        indexes = [
            models.Index(fields=["session", "-requested_at"], name="replay_session_requested"),
            # The worker's claim: open rows only.
            models.Index(
                fields=["status", "requested_at"],
                condition=Q(status__in=["queued", "running"]),
                name="replay_open",
            ),
        ]

    def __str__(self) -> str:
        return f"Replay {self.public_id} ({self.status})"

    @property
    def agent_version_label(self) -> str:
        if not self.agent_config_hash:
            return ""
        return f"{self.agent_backend} · {self.agent_model or '-'} · {self.agent_config_hash}"


class ReplayMessage(models.Model):
    """One message of a replay: a visitor turn as the original had it, or the agent's new reply.

    `original` is the original transcript's message this one stands beside: for a visitor turn,
    that turn; for a reply, the visitor turn it answers.
    """

    replay = models.ForeignKey(Replay, on_delete=models.CASCADE, related_name="messages")
    position = models.PositiveIntegerField()
    role = models.CharField(max_length=16)  # visitor / ai
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    original = models.ForeignKey(
        "sessions_app.ChatMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["replay", "position"]
        constraints = [
            models.UniqueConstraint(fields=["replay", "position"], name="replay_message_position")
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"
