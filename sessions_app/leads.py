"""Lead normalising: the one rule for what counts as a lead's name and email.

Pure functions with no database access, shared by the lead service and by the agent backends that
spot a name or an email in what the visitor typed (so a backend never offers a lead the service
would refuse).
"""

import hashlib

from email_validator import EmailNotValidError, validate_email

from sessions_app.errors import InvalidLead

MAX_NAME_LENGTH = 200


def normalize_email(email: str) -> str:
    """Validate syntax and domain form (no DNS); return the normalized address or raise."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidLead(str(exc), field="email") from None


def normalize_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidLead("The name must not be empty.", field="name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidLead(f"The name is longer than {MAX_NAME_LENGTH} characters.", field="name")
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
