"""How each status looks as a badge: written once for the dashboard and the QA console.

The dashboard colours a badge with Bootstrap (`text-bg-<style>`): its templates through the
`status_style` filter, its scripts through the page config (`badges`, read by `LC.badge`), so
no script keeps a copy. The QA console takes the labels from here and its colours from its own
stylesheet, by kind and value (`qa-state--delivery-failed`).

`label` is the status's own label (its choice). `list_label` is what the session list shows,
where a row's badges stand side by side with no column header to say which status each one is.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import TextChoices

from sessions_app.models import (
    ArchiveStatus,
    Channel,
    CompletionStatus,
    DeliveryState,
    DeliveryStatus,
    EmailQuality,
    HumanRequestStatus,
    QAStatus,
)

# Bootstrap's colour for a value the table does not know (a status added without a badge).
FALLBACK_STYLE = "secondary"


@dataclass(frozen=True)
class Badge:
    label: str
    style: str
    list_label: str


def _badges(
    choices: type[TextChoices], styles: dict[str, str], list_labels: dict[str, str] | None = None
) -> dict[str, Badge]:
    # Every choice needs its style: a status added without one fails here, at import.
    return {
        value: Badge(
            label=str(label),
            style=styles[value],
            list_label=(list_labels or {}).get(value, str(label)),
        )
        for value, label in choices.choices
    }


BADGES: dict[str, dict[str, Badge]] = {
    "completion": _badges(
        CompletionStatus,
        {
            CompletionStatus.IN_PROGRESS: "info",
            CompletionStatus.COMPLETE: "success",
            CompletionStatus.INCOMPLETE: "secondary",
        },
    ),
    "archive": _badges(
        ArchiveStatus, {ArchiveStatus.ACTIVE: "primary", ArchiveStatus.ARCHIVED: "secondary"}
    ),
    "qa": _badges(
        QAStatus,
        {
            QAStatus.UNCHECKED: "light",
            QAStatus.PASSED: "success",
            QAStatus.ISSUE: "danger",
            QAStatus.FIXED: "warning",
        },
        {
            QAStatus.UNCHECKED: "QA: unchecked",
            QAStatus.PASSED: "QA: passed",
            QAStatus.ISSUE: "QA: issue",
            QAStatus.FIXED: "QA: fixed",
        },
    ),
    # The session's lead delivery, summed up over its outbox rows.
    "delivery": _badges(
        DeliveryState,
        {
            DeliveryState.NONE: "light",
            DeliveryState.PENDING: "info",
            DeliveryState.DELIVERED: "success",
            DeliveryState.FAILED: "danger",
            DeliveryState.PAUSED: "warning",
            DeliveryState.DISABLED: "secondary",
        },
        {
            DeliveryState.PENDING: "Delivery pending",
            DeliveryState.FAILED: "Delivery failed",
            DeliveryState.PAUSED: "Delivery paused",
        },
    ),
    # Where the conversation happens. The session list shows it beside the statuses for every
    # channel but the web widget's, which most sessions are.
    "channel": _badges(
        Channel,
        {
            Channel.WEB: "light",
            Channel.MESSENGER: "primary",
            Channel.API: "dark",
            Channel.WHATSAPP: "success",
            Channel.INSTAGRAM: "warning",
            Channel.TELEGRAM: "info",
        },
    ),
    # A visitor waiting for a person (`needs_human`): the one badge meant to catch the eye.
    "human": _badges(
        HumanRequestStatus,
        {HumanRequestStatus.NONE: "light", HumanRequestStatus.REQUESTED: "danger"},
        {HumanRequestStatus.REQUESTED: "Needs a human"},
    ),
    # What sessions_app.email_quality found about the lead's email. The session list shows every
    # value but `valid`; blank (no email checked) shows nothing.
    "email_quality": _badges(
        EmailQuality,
        {
            EmailQuality.VALID: "success",
            EmailQuality.NO_MX: "danger",
            EmailQuality.DISPOSABLE: "warning",
            EmailQuality.ROLE: "info",
            EmailQuality.UNVERIFIABLE: "secondary",
        },
        {
            EmailQuality.VALID: "Email valid",
            EmailQuality.NO_MX: "Email: no mail server",
            EmailQuality.DISPOSABLE: "Email: disposable",
            EmailQuality.ROLE: "Email: role address",
            EmailQuality.UNVERIFIABLE: "Email: unverified",
        },
    ),
    # One outbox row (a webhook or an email): waiting is a warning here, not news.
    "outbox": _badges(
        DeliveryStatus,
        {
            DeliveryStatus.PENDING: "warning",
            DeliveryStatus.SENDING: "warning",
            DeliveryStatus.DELIVERED: "success",
            DeliveryStatus.FAILED: "danger",
            DeliveryStatus.CANCELLED: "secondary",
        },
    ),
}


def badge(kind: str, value: str) -> Badge:
    """The badge of `value` among the statuses of `kind`; an unknown value shows as itself."""
    found = BADGES[kind].get(str(value))
    if found is None:
        return Badge(label=str(value), style=FALLBACK_STYLE, list_label=str(value))
    return found


def badges_config() -> dict[str, dict[str, dict[str, str]]]:
    """The table as the dashboard's scripts read it from the page config."""
    return {
        kind: {
            value: {"label": b.label, "style": b.style, "listLabel": b.list_label}
            for value, b in values.items()
        }
        for kind, values in BADGES.items()
    }
