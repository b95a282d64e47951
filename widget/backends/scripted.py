"""The built-in agent: no network, a fixed path from greeting to captured lead.

Its state is the transcript itself: each of its messages records the `step` it asked for in the
metadata, so there is no extra table and a reload or a second web process sees the same state.
It validates with the same functions `lead_capture` uses (no writes here), so the reason it gives
for a bad email is the reason the service would refuse it with.
"""

from __future__ import annotations

import re
from typing import Any

from sessions_app.errors import InvalidLead
from sessions_app.leads import normalize_email, normalize_name
from widget.backends.base import AgentReply, Conversation, LeadFields
from widget.backends.human_request import asks_for_human

EMAIL_CANDIDATE = re.compile(r"[^\s<>(),;:\"']*@[^\s<>(),;:\"']*")
# "I'm Ana", "my name is Ana Silva", "this is Ana", "name: Ana" (up to four words).
NAME_PHRASE = re.compile(
    r"(?:\bmy name is|\bi am|\bi'm|\bim|\bthis is|\bname\s*[:=-]|\bcall me)\s+"
    r"(?P<name>[^\W\d_][\w'.-]*(?:\s+[^\W\d_][\w'.-]*){0,3})",
    re.IGNORECASE,
)
# Words that end a name picked out of a sentence ("I'm Ana and I need a quote").
NAME_STOP_WORDS = {
    "and",
    "from",
    "with",
    "at",
    "here",
    "my",
    "email",
    "e-mail",
    "mail",
    "i",
    "i'm",
    "im",
    "looking",
    "interested",
    "the",
    "a",
    "an",
    "but",
    "or",
    "so",
    "to",
    "of",
    "in",
    "is",
    "just",
    "not",
    "very",
    "really",
    "happy",
    "glad",
    "trying",
    "wondering",
    "curious",
    "new",
    "ready",
    "going",
    "planning",
    "thinking",
    "hoping",
    "sure",
    "on",
    "for",
    "still",
    "also",
}
# The scripted flow's "model": its agent version names it (widget.backends.version).
SCRIPTED_MODEL = "scripted-v1"
DEFAULT_QUICK_REPLIES = ["I'd like a quote", "Book a demo", "I have a question"]


class ScriptedBackend:
    name = "scripted"
    # It only reads the step of the last AI turn (_last_step); a short window keeps every
    # message from loading and parsing a long transcript it would not look at.
    history_messages = 6

    def reply(self, conversation: Conversation) -> AgentReply:
        text = conversation.text.strip()
        lead = conversation.lead
        step = _last_step(conversation)

        found_email, email_error = _find_email(text)
        found_name = _find_name(text)
        if step == "name" and not found_name and not found_email and not email_error:
            found_name = _bare_name(text)

        name = lead.name or found_name
        email = lead.email or found_email
        update = LeadFields(
            name=found_name if found_name and not lead.name else None,
            email=found_email if found_email and not lead.email else None,
            data={"need": text[:500]} if step == "need" else {},
        )
        first = (name or "").split(" ")[0]

        if asks_for_human(text):
            # widget.services words the answer (someone joins, or the team writes back by
            # email outside the site's hours); the flow resumes at the same step afterwards.
            return AgentReply(
                text="",
                lead=update or None,
                model="scripted-v1",
                extra={"step": step},
                handoff=True,
            )
        if lead.name and lead.email:
            return self._answer(
                "Thanks! I've added that to your conversation; the team will see it.",
                step="done",
                lead=update,
            )
        if email_error and not lead.email:
            return self._answer(
                f"That email doesn't look right: {email_error} Could you check it?",
                step="email",
                expects="email",
                lead=update,
            )
        if name and email:
            return self._answer(
                f"Perfect, thank you {first}! Someone from our team will be in touch at "
                f"{email} shortly.",
                step="done",
                lead=update,
            )
        if step == "email" and not email:
            return self._answer(
                "I couldn't find an email address in that. It needs an @ and a domain, like "
                "name@example.com. What's the best email to reach you?",
                step="email",
                expects="email",
                lead=update,
            )
        if name:
            return self._answer(
                f"Thanks, {first}! What's the best email to reach you?",
                step="email",
                expects="email",
                lead=update,
            )
        if step == "name":
            return self._answer(
                "Sorry, I didn't catch your name. What should I call you?",
                step="name",
                lead=update,
            )
        return self._answer(
            "Happy to help with that! May I have your name?"
            if not email
            else "Thanks, I've got your email. And may I have your name?",
            step="name",
            lead=update,
        )

    @staticmethod
    def greeting_metadata(config: dict[str, Any]) -> dict[str, Any]:
        quick = config.get("quick_replies")
        if not isinstance(quick, list):
            quick = DEFAULT_QUICK_REPLIES
        return {
            "kind": "greeting",
            "backend": "scripted",
            "step": "need",
            "quick_replies": [str(q)[:60] for q in quick[:4]],
        }

    def _answer(
        self, text: str, *, step: str, lead: LeadFields, expects: str = "text"
    ) -> AgentReply:
        return AgentReply(
            text=text,
            lead=lead or None,
            expects=expects,
            model=SCRIPTED_MODEL,
            extra={"step": step},
        )


def extract_lead(text: str) -> LeadFields:
    """A name or a valid email offered in free text; used when a network backend is down."""
    email, _ = _find_email(text)
    return LeadFields(name=_find_name(text), email=email)


def _last_step(conversation: Conversation) -> str:
    for turn in reversed(conversation.history[:-1]):
        if turn.role == "ai":
            return str(turn.metadata.get("step") or "need")
    return "need"


def _find_email(text: str) -> tuple[str | None, str | None]:
    """The first email-like token: (normalized email, None), (None, reason) or (None, None)."""
    match = EMAIL_CANDIDATE.search(text)
    if not match:
        return None, None
    candidate = match.group(0).rstrip(".!?")
    try:
        return normalize_email(candidate), None
    except InvalidLead as exc:
        return None, str(exc)


def _find_name(text: str) -> str | None:
    match = NAME_PHRASE.search(EMAIL_CANDIDATE.sub(" ", text))
    if not match:
        return None
    words: list[str] = []
    for word in match.group("name").split():
        if word.lower() in NAME_STOP_WORDS:
            break
        words.append(word.strip(".,!"))
    return _clean_name(" ".join(words))


def _bare_name(text: str) -> str | None:
    """A reply to "may I have your name?" that is just the name ("Ana Silva")."""
    cleaned = EMAIL_CANDIDATE.sub(" ", text).strip(" .!,")
    words = cleaned.split()
    if not 1 <= len(words) <= 5 or any(ch.isdigit() for ch in cleaned) or "?" in cleaned:
        return None
    return _clean_name(cleaned)


def _clean_name(name: str) -> str | None:
    try:
        cleaned = normalize_name(name)
    except InvalidLead:
        return None
    # Visitors type "ana silva"; the team reads "Ana Silva". Leave mixed case ("McKenzie") alone.
    if cleaned.islower():
        cleaned = " ".join(part[:1].upper() + part[1:] for part in cleaned.split())
    return cleaned
