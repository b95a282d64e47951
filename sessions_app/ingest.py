"""Conversations that run elsewhere (an AI agent in n8n answering on WhatsApp, Telegram, ...),
stored as they are reported: the service behind the ingest API (`sessions_app/api/ingest.py`).

It only composes the one paths: the session through `session_for_conversation`, the message
through `message_add`, the lead through `lead_capture` (its validation, its `lead_captured`
signal and so the lead webhook's outbox row). Each reported message is its own transaction
(a savepoint when the caller already has one): a refused message leaves nothing behind and
takes nothing with it, and a batch never holds a session's row lock for longer than one message,
so two batches touching the same conversations in a different order cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app.email_quality import email_check
from sessions_app.errors import IngestRefused, InvalidLead, SessionDeleted
from sessions_app.leads import normalize_email
from sessions_app.models import Channel, ChatMessage, ChatSession, MessageRole
from sessions_app.selectors import conversation_session
from sessions_app.services import lead_capture, message_add, session_for_conversation

# Who may speak in a reported transcript: system notes are leadchat's own.
INGEST_ROLES = (MessageRole.VISITOR, MessageRole.AI, MessageRole.AGENT)
LEAD_FIELDS = ("name", "email", "phone")
# A reported time may run this far ahead of ours (the other host's clock); it is stored as now.
CLOCK_SKEW = timedelta(minutes=5)
# Before this, a time is a broken expression (0, an unset field), not a message.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ingested:
    """What became of one reported message."""

    created: bool  # False: the message id was already stored in this conversation
    session: ChatSession


def message_ingest(
    *,
    channel: str,
    conversation_id: str,
    message_id: str,
    role: str,
    text: str,
    created_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    lead: Mapping[str, str | None] | None = None,
    site: Any = None,
    now: datetime | None = None,
) -> Ingested:
    """Store one message of conversation `conversation_id` on `channel`, once per `message_id`.

    The conversation's session is found or started (with `site`, and starting at `created_at`).
    `created_at` is when the message was written there: kept as the message's time, refused
    when it is more than CLOCK_SKEW ahead of now or before EARLIEST. The `lead` fields that are
    set go to `lead_capture`; a replayed message changes nothing, its lead included.
    Raises IngestRefused naming the field at fault; nothing of the message is stored then.
    """
    _check(channel=channel, role=role, conversation_id=conversation_id, message_id=message_id)
    when = _reported_time(created_at, now=now or timezone.now())
    # Empty or null fields are left out: an n8n expression for a field not found yet gives "".
    lead_values = {k: v for k, v in (lead or {}).items() if k in LEAD_FIELDS and v}
    try:
        # The email's DNS check runs here, before the transaction: at most
        # LEAD_EMAIL_DNS_TIMEOUT, cached per domain, and never with a row locked. Ingest accepts
        # and flags what a site would refuse in the widget: the conversation happened on
        # another channel, whose agent has already answered; refusing would lose the message.
        quality = None
        if lead_values.get("email"):
            quality = email_check(normalize_email(lead_values["email"])).quality
        with transaction.atomic():
            session, _started = session_for_conversation(
                channel=channel, external_id=conversation_id, site=site, started_at=when
            )
            if site is not None and session.site_id != site.pk:
                raise IngestRefused(
                    "This conversation was started for another site; a conversation keeps its "
                    "site.",
                    field="site",
                )
            if _already_stored(session=session, message_id=message_id):
                return Ingested(created=False, session=session)
            message_add(
                session=session,
                role=role,
                text=text,
                metadata=metadata,
                external_id=message_id,
                created_at=when,
            )
            if lead_values:
                lead_capture(
                    session=session,
                    name=lead_values.get("name"),
                    email=lead_values.get("email"),
                    phone=lead_values.get("phone"),
                    email_quality=quality,
                )
    except InvalidLead as exc:
        raise IngestRefused(str(exc), field=f"lead.{exc.field}") from None
    except SessionDeleted:
        raise IngestRefused(
            "This conversation's session is in the trash: restore it to add messages.",
            field="conversation_id",
        ) from None
    except IntegrityError:
        # The same message, stored by another request between our check and our insert (the
        # unique constraint made ours wait for it, then fail). Anything else is not ours to hide.
        found = conversation_session(channel=channel, external_id=conversation_id)
        if (
            found is None
            or not ChatMessage.objects.filter(session=found, external_id=message_id).exists()
        ):
            raise
        return Ingested(created=False, session=found)
    return Ingested(created=True, session=session)


def _already_stored(*, session: ChatSession, message_id: str) -> bool:
    # Answers a replay without an error; a replay racing its original is still caught by the
    # unique constraint (the IntegrityError above).
    return session.messages.filter(external_id=message_id).exists()


def _check(*, channel: str, role: str, conversation_id: str, message_id: str) -> None:
    if channel not in Channel.values:
        raise IngestRefused(
            f"Unknown channel {channel!r}: one of {', '.join(Channel.values)}.", field="channel"
        )
    if role not in INGEST_ROLES:
        raise IngestRefused(
            f"Unknown role {role!r}: one of {', '.join(INGEST_ROLES)}.", field="role"
        )
    if not conversation_id:
        raise IngestRefused("The conversation id must not be empty.", field="conversation_id")
    if not message_id:
        raise IngestRefused("The message id must not be empty.", field="message_id")


def _reported_time(created_at: datetime | None, *, now: datetime) -> datetime | None:
    if created_at is None:
        return None
    if timezone.is_naive(created_at):
        raise IngestRefused(
            "The time has no time zone: send it as ISO 8601 with an offset or Z "
            "(2026-12-01T13:05:00Z).",
            field="created_at",
        )
    if created_at > now + CLOCK_SKEW:
        raise IngestRefused(
            f"The time is in the future (more than {CLOCK_SKEW.seconds // 60} minutes ahead "
            "of the server's clock).",
            field="created_at",
        )
    if created_at < EARLIEST:
        raise IngestRefused(
            f"The time is before {EARLIEST:%Y-%m-%d}: the expression that makes it is broken.",
            field="created_at",
        )
    return min(created_at, now)
