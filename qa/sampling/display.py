"""How the console words a session's sampling decision."""

from qa.sampling.models import SessionSample
from sessions_app.models import ChatSession

REASON_LABELS = {
    "automation_error": "an automation error",
    "needs_human": "asked for a person",
    "email_incomplete": "email captured, session incomplete",
    "random": "random share",
}


def sample_reasons_label(sample: SessionSample) -> str:
    if not sample.sampled:
        return f"no rule matched and outside the random {sample.random_percent}%"
    words = []
    for reason in sample.reasons:
        if reason.startswith("keyword:"):
            words.append(f"keyword “{reason.removeprefix('keyword:')}”")
        else:
            words.append(REASON_LABELS.get(reason, reason))
    if "random" in sample.reasons:
        words[-1] = f"random {sample.random_percent}%"
    return ", ".join(words)


def session_sample(session: ChatSession) -> SessionSample | None:
    """The session's decision (joined by the review page's query; one query elsewhere)."""
    try:
        return session.qa_sample
    except SessionSample.DoesNotExist:
        return None
