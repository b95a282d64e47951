"""The session page's Replays box (a `Panel` of ChatSessionAdmin)."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from qa.replay import selectors
from qa.replay.services import can_replay
from qa.sampling.display import sample_reasons_label, session_sample
from sessions_app.models import ChatSession


def replays_context(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    sample = session_sample(session)
    latest = selectors.latest_replay(session)
    return {
        "sample": sample,
        "sample_reasons": sample_reasons_label(sample) if sample is not None else "",
        "latest": latest,
        "latest_url": reverse("admin:qa_replay_change", args=[latest.pk]) if latest else "",
        "all_url": reverse("admin:qa_replay_changelist") + f"?session={session.pk}",
        "can_replay": can_replay(request.user),
        "request_url": reverse("admin:qa_replay_request", args=[session.pk]),
    }
