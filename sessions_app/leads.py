"""Lead normalising: the one rule for what counts as a lead's name, email and phone.

Pure functions with no database access, shared by the lead service and by the agent backends that
spot a name or an email in what the visitor typed (so a backend never offers a lead the service
would refuse). What an email is worth beyond its syntax (DNS, throwaway domains, role addresses)
is `sessions_app.email_quality`'s.
"""

import hashlib

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from sessions_app.errors import InvalidLead

MAX_NAME_LENGTH = 200

# Answers to "may I have your name?" that are not one ("no thanks" once became the lead
# "No Thanks"). Compared in lower case, without the punctuation around them.
NOT_NAMES = frozenset(
    {
        "anonymous",
        "i'd rather not",
        "i'd rather not say",
        "id rather not",
        "later",
        "maybe later",
        "n/a",
        "nah",
        "no",
        "no name",
        "no thank you",
        "no thanks",
        "no thx",
        "no way",
        "none",
        "nope",
        "not now",
        "not telling",
        "nothing",
        "prefer not to say",
        "rather not",
        "rather not say",
        "skip",
        "skip it",
        "why",
        # The same in the widget's other languages (Site.language): es, pt, fr, de.
        "no gracias",
        "no, gracias",
        "ahora no",
        "más tarde",
        "mas tarde",
        "prefiero no",
        "prefiero no decirlo",
        "não",
        "nao",
        "não obrigado",
        "não, obrigado",
        "não obrigada",
        "nao obrigado",
        "agora não",
        "prefiro não",
        "mais tarde",
        "depois",
        "non",
        "non merci",
        "non, merci",
        "plus tard",
        "pas maintenant",
        "je préfère pas",
        "je préfère ne pas",
        "nein",
        "nein danke",
        "nein, danke",
        "später",
        "jetzt nicht",
        "lieber nicht",
    }
)
# What a visitor types by habit in front of a name, before a handle or a list item ("-Dan",
# "+Bob Smith", "@Carol", "* Ana"), and the full stop after it ("Ana."). Only these: anything
# else (quotes, markup) is kept as typed, and shown as text wherever it is shown.
_LEADING = frozenset("-+@*#~•·.,;:!?_ \t")
_TRAILING = " \t.,;:!?"


def normalize_email(email: str) -> str:
    """Validate syntax and domain form (no DNS); return the normalized address or raise."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidLead(str(exc), field="email") from None


def normalize_name(name: str) -> str:
    """The name as the team reads it, or InvalidLead when it is not a name.

    Leading punctuation is dropped ("-Dan" -> "Dan", "@Carol" -> "Carol"); a refusal
    ("no thanks", "skip"), something without a letter (a number) or an email is refused.
    """
    cleaned = " ".join(name.split())
    start = 0
    while start < len(cleaned) and cleaned[start] in _LEADING:
        start += 1
    cleaned = cleaned[start:].rstrip(_TRAILING)
    if not any(ch.isalpha() for ch in cleaned):
        raise InvalidLead("The name must contain letters.", field="name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidLead(f"The name is longer than {MAX_NAME_LENGTH} characters.", field="name")
    if "@" in cleaned:
        raise InvalidLead("That is an email address, not a name.", field="name")
    if is_refusal(cleaned):
        raise InvalidLead(f'"{cleaned}" is not a name.', field="name")
    return cleaned


def lead_key(email: str) -> str:
    """The key that makes sessions with the same email one person on the Leads page.

    The email as `normalize_email` returns it, trimmed and lower-cased (validate_email keeps the
    local part's case; no mail provider in practice tells Bob@ from bob@), then hashed: the key
    also names the person in URLs, where an email must not appear. "" for no email.
    """
    cleaned = email.strip().lower()
    if not cleaned:
        return ""
    return hashlib.sha256(cleaned.encode()).hexdigest()


def is_refusal(text: str) -> bool:
    """A visitor declining to answer ("no thanks", "skip", "later")."""
    return " ".join(text.lower().strip(" \t.,;:!?\"'-").split()) in NOT_NAMES


def normalize_phone(phone: str, *, region: str = "") -> str:
    """The number in E.164 (+351912345678), or InvalidLead when it is not a valid number.

    `region` (a site's default, "PT") reads a national number ("912 345 678"); without one,
    only international numbers (+country code) are understood.
    """
    raw = phone.strip()
    try:
        parsed = phonenumbers.parse(raw, region.upper() or None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        hint = "" if region else " Include the country code (+1, +44, ...)."
        raise InvalidLead(f"{raw[:50]!r} is not a valid phone number.{hint}", field="phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
