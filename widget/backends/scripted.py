"""The built-in agent: no network, a fixed path from greeting to captured lead.

Its state is the transcript itself: each of its messages records the `step` it asked for in the
metadata, so there is no extra table and a reload or a second web process sees the same state.
It validates with the same functions `lead_capture` uses (no writes here), so the reason it gives
for a bad email is the reason the service would refuse it with.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import phonenumbers
from django.utils.translation import get_language, gettext, gettext_noop

from sessions_app.email_quality import email_check, email_refusal
from sessions_app.errors import InvalidLead
from sessions_app.leads import is_refusal, normalize_email, normalize_name, normalize_phone
from widget.backends.base import AgentReply, Conversation, LeadFields
from widget.backends.human_request import asks_for_human

EMAIL_CANDIDATE = re.compile(r"[^\s<>(),;:\"']*@[^\s<>(),;:\"']*")
# "@Carol": a handle typed as a name, not an email (nothing before the @, no domain after it).
HANDLE = re.compile(r"^@[^\s.@]+$")
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
# Its lines are said through gettext, in the site's language (widget.i18n.site_texts, around
# every call of the agent); the quick replies too, unless the site lists its own.
DEFAULT_QUICK_REPLIES = [
    gettext_noop("I'd like a quote"),
    gettext_noop("Book a demo"),
    gettext_noop("I have a question"),
]


YES_WORDS = {"yes", "y", "yeah", "yep", "yup", "correct", "right", "sure", "yes please", "ok"}
# "Yes" in the widget's other languages (a reply to "Did you mean ...?").
YES_WORDS |= {"si", "sí", "claro", "sim", "oui", "ja", "genau", "exacto", "exato", "correcto"}
# A phone number typed in a sentence: seven digits or more, with the usual separators.
PHONE_CANDIDATE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
PHONE_WORDS = re.compile(r"\b(phone|mobile|cell|call|tel|whatsapp|number)\b", re.IGNORECASE)
# How many times a visitor may decline before the agent stops asking (issue 16).
MAX_DECLINES = 2


class ScriptedBackend:
    name = "scripted"
    # It only reads the metadata of the last AI turn (_last_ai); a short window keeps every
    # message from loading and parsing a long transcript it would not look at.
    history_messages = 6

    def reply(self, conversation: Conversation) -> AgentReply:
        text = conversation.text.strip()
        lead = conversation.lead
        rules = conversation.lead_rules
        last = _last_ai(conversation)
        step = str(last.get("step") or "need")
        declines = _int(last.get("declines"))

        found_email, email_error = _find_email(text)
        # "Did you mean ana@gmail.com?" -> "yes" takes the suggestion; the same address typed
        # again means the visitor meant it.
        suggested = str(last.get("suggested_email") or "") if step == "email" else ""
        confirmed = False
        if suggested and not found_email and not email_error and _is_yes(text):
            found_email, confirmed = suggested, True
        elif suggested and found_email and found_email == last.get("typo_email"):
            confirmed = True
        found_phone, phone_error = _find_phone(text, rules.phone_region)
        found_name = _find_name(text)
        offered = bool(found_email or email_error or found_name or found_phone)
        # "no" to "Did you mean ...?" says the guess was wrong, not that no email will come.
        rejected_guess = bool(suggested) and not offered and is_refusal(text)
        declined = (
            step in ("name", "email") and not offered and not rejected_guess and is_refusal(text)
        )
        if step == "name" and not offered and not declined:
            found_name = _bare_name(text)

        notes: list[str] = []
        if phone_error:
            notes.append(_phone_problem(phone_error))
        email_ask: dict[str, Any] = {}
        if found_email and not lead.email:
            check = email_check(found_email)
            refusal = email_refusal(
                check,
                refuse_no_mx=rules.refuse_no_mx,
                refuse_disposable=rules.refuse_disposable,
            )
            suggestion = check.suggestion if not confirmed else None
            if refusal or suggestion:
                email_ask = {"typo_email": found_email}
                if suggestion:
                    email_ask["suggested_email"] = suggestion
                found_email = None
                if refusal:
                    notes.append(refusal)
                    ask = gettext("Did you mean %(email)s?") % {"email": suggestion}
                    another = gettext("Could you give me another email?")
                    email_ask["text"] = f"{ask} {another}" if suggestion else another
                else:
                    email_ask["text"] = gettext(
                        "Did you mean %(suggestion)s? Reply yes, or type your email again if "
                        "%(email)s is right."
                    ) % {"suggestion": suggestion, "email": email_ask["typo_email"]}

        name = lead.name or found_name
        email = lead.email or found_email
        update = LeadFields(
            name=found_name if found_name and not lead.name else None,
            email=found_email if found_email and not lead.email else None,
            phone=found_phone if found_phone and not lead.phone else None,
            data={"need": text[:500]} if step == "need" else {},
        )
        first = (name or "").split(" ")[0]

        def answer(reply: str, *, step: str, expects: str = "text", **extra: Any) -> AgentReply:
            return self._answer(
                " ".join([*notes, reply]),
                step=step,
                lead=update,
                expects=expects,
                declines=declines,
                **extra,
            )

        if asks_for_human(text):
            # widget.services words the answer (someone joins, or the team writes back by
            # email outside the site's hours); the flow resumes at the same step afterwards.
            facts: dict[str, Any] = {"step": step}
            if declines:
                facts["declines"] = declines
            return AgentReply(
                text="", lead=update or None, model=SCRIPTED_MODEL, extra=facts, handoff=True
            )
        if lead.name and lead.email:
            return answer(
                gettext("Thanks! I've added that to your conversation; the team will see it."),
                step="done",
            )
        if email_error and not lead.email:
            return answer(
                gettext("That email doesn't look right: %(problem)s Could you check it?")
                % {"problem": _email_problem(email_error)},
                step="email",
                expects="email",
            )
        if email_ask:
            text_ = email_ask.pop("text")
            return answer(text_, step="email", expects="email", **email_ask)
        if rejected_guess:
            return answer(
                gettext("No problem. Could you type your email again?"),
                step="email",
                expects="email",
            )
        if declined:
            declines += 1
            if declines >= MAX_DECLINES:
                update = replace(
                    update,
                    declined=f"Declined to leave contact details {declines} times "
                    f"(last asked for {'an email' if step == 'email' else 'a name'}).",
                )
                contact = rules.contact_line.strip() or gettext(
                    "Your messages here are saved, and the team can read them."
                )
                return answer(
                    gettext(
                        "No problem, I won't ask again. %(contact)s Thanks for stopping by, and "
                        "have a good day!"
                    )
                    % {"contact": contact},
                    step="declined",
                )
            if step == "email":
                return answer(
                    gettext(
                        "No problem. Without an email we can't get back to you outside this "
                        "chat, though. If you change your mind, what's the best email to reach "
                        "you?"
                    ),
                    step="email",
                    expects="email",
                )
            return answer(
                gettext("No problem. What's the best email to reach you, then?"),
                step="email",
                expects="email",
            )
        if name and email:
            return answer(
                gettext(
                    "Perfect, thank you %(name)s! Someone from our team will be in touch at "
                    "%(email)s shortly."
                )
                % {"name": first, "email": email},
                step="done",
            )
        if step == "declined" and not offered:
            return answer(
                gettext("Thanks, I've added that to your conversation; the team will see it."),
                step="declined",
            )
        if step == "email" and not email:
            return answer(
                gettext(
                    "I couldn't find an email address in that. It needs an @ and a domain, like "
                    "name@example.com. What's the best email to reach you?"
                ),
                step="email",
                expects="email",
            )
        if name:
            return answer(
                gettext("Thanks, %(name)s! What's the best email to reach you?") % {"name": first},
                step="email",
                expects="email",
            )
        if email:
            # An email given at the name prompt (or before it): thanked for, then the name.
            return answer(
                gettext("Thanks, I've got your email. And may I have your name?"), step="name"
            )
        if step == "name":
            return answer(
                gettext("Sorry, I didn't catch your name. What should I call you?"), step="name"
            )
        return answer(gettext("Happy to help with that! May I have your name?"), step="name")

    @staticmethod
    def greeting_metadata(config: dict[str, Any]) -> dict[str, Any]:
        quick = config.get("quick_replies")
        if not isinstance(quick, list):
            quick = [gettext(q) for q in DEFAULT_QUICK_REPLIES]
        return {
            "kind": "greeting",
            "backend": "scripted",
            "step": "need",
            "quick_replies": [str(q)[:60] for q in quick[:4]],
        }

    def _answer(
        self,
        text: str,
        *,
        step: str,
        lead: LeadFields,
        expects: str = "text",
        declines: int = 0,
        **extra: Any,
    ) -> AgentReply:
        facts: dict[str, Any] = {"step": step, **extra}
        if declines:
            facts["declines"] = declines
        return AgentReply(
            text=text,
            lead=lead or None,
            expects=expects,
            model=SCRIPTED_MODEL,
            extra=facts,
        )


def extract_lead(text: str) -> LeadFields:
    """A name or a valid email offered in free text; used when a network backend is down."""
    email, _ = _find_email(text)
    return LeadFields(name=_find_name(text), email=email)


def _email_problem(reason: str) -> str:
    """Why an email is malformed, for the visitor. email-validator explains in English only: in
    another language the visitor reads what an address needs instead."""
    if (get_language() or "en").startswith("en"):
        return reason
    return gettext("An email address needs a name, an @ and a domain, like name@example.com.")


def _phone_problem(reason: str) -> str:
    """Why a phone number was left out; its reason (phonenumbers', ours) is English only."""
    if (get_language() or "en").startswith("en"):
        return gettext("I've left the phone number out: %(problem)s") % {"problem": reason}
    return gettext("I've left the phone number out: it doesn't look like a valid number.")


def _last_ai(conversation: Conversation) -> dict[str, Any]:
    """The metadata of the agent's last message before the visitor's new one (its state)."""
    for turn in reversed(conversation.history[:-1]):
        if turn.role == "ai":
            return turn.metadata
    return {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _is_yes(text: str) -> bool:
    return " ".join(text.lower().strip(" .!,").split()) in YES_WORDS


def _find_phone(text: str, region: str) -> tuple[str | None, str | None]:
    """A phone number in the text: (E.164, None), (None, reason) for one that is not a valid
    number, or (None, None) when the text offers none."""
    cleaned = EMAIL_CANDIDATE.sub(" ", text)
    for match in phonenumbers.PhoneNumberMatcher(cleaned, region.upper() or None):
        try:
            return normalize_phone(match.raw_string, region=region), None
        except InvalidLead:
            continue
    candidate = PHONE_CANDIDATE.search(cleaned)
    # Only a number the visitor calls a phone ("my number is 12345") is worth a remark: a
    # quantity or a year in a sentence is not.
    if candidate and (candidate.group(0).startswith("+") or PHONE_WORDS.search(cleaned)):
        try:
            return normalize_phone(candidate.group(0), region=region), None
        except InvalidLead as exc:
            return None, str(exc)
    return None, None


def _find_email(text: str) -> tuple[str | None, str | None]:
    """The first email-like token: (normalized email, None), (None, reason) or (None, None)."""
    match = EMAIL_CANDIDATE.search(text)
    if not match:
        return None, None
    candidate = match.group(0).rstrip(".!?")
    if HANDLE.match(candidate):
        return None, None
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
    # Emails are taken out; a handle ("@Carol") stays, normalize_name drops its "@".
    cleaned = EMAIL_CANDIDATE.sub(lambda m: m[0] if HANDLE.match(m[0]) else " ", text)
    cleaned = cleaned.strip(" .!,")
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
