"""Agents step in: take a session over from the AI, reply to the visitor, hand it back.

One service per move, each in one transaction on the session's locked row (two agents pressing
"Take over" at once queue on the lock: the first wins, the second reads the winner as holder and
is refused with their name), with a `LifecycleHistory` row of kind `takeover` and, for the
visitor, a system line in the transcript ("Ana from Acme joined the chat"; `visible` in its
metadata, so the widget shows it where other system notes stay internal).

While a session is held the AI does not answer it (`widget.services.widget_message_post` and the
Messenger worker check `held_by`); after the hand back the agent's turns are part of the history
every backend is shown (role `agent`).

How an agent's reply reaches the visitor depends on the channel. The web widget polls for it
(nothing to send). Another channel plugs in its own path with `register_reply_channel`: a check
saying why a reply cannot go out now (Meta's 24-hour window), and a function queueing it (an
outbox delivery) inside the transaction that stores it. sessions_app does not import the
channels (dependencies point widget -> sessions_app), so Messenger registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Role, User
from sessions_app.errors import DomainError, SessionDeleted, TransitionNotAllowed
from sessions_app.models import (
    Channel,
    ChatMessage,
    ChatSession,
    HoldStatus,
    LifecycleHistory,
    MessageRole,
)
from sessions_app.services import human_request_clear, message_add
from sessions_app.transitions import copy_state, lock
from widget.i18n import site_texts

MAX_AGENT_MESSAGE_CHARS = 4000


class SessionHeld(DomainError):
    """Someone else holds the session (or nobody does, for a reply or a hand back)."""

    def __init__(self, message: str, *, holder: User | None) -> None:
        super().__init__(message)
        self.holder = holder


class RoleRefused(DomainError):
    """The user's role may not take over or reply (QA reviewers read only)."""


class InvalidReply(DomainError):
    """An agent's reply our rules refuse (empty, too long)."""


class ReplyUndeliverable(DomainError):
    """The reply cannot reach the visitor now (a channel's rule, e.g. Meta's 24-hour window)."""


@dataclass(frozen=True)
class ReplyChannel:
    """How an agent's reply goes out on a channel other than the web widget.

    `blocked(session, now)` says why a reply cannot be sent now, or None; `send(session,
    message)` queues the stored reply (an outbox row), called inside the transaction that
    stores it, so both commit or neither.
    """

    blocked: Callable[[ChatSession, datetime], str | None]
    send: Callable[[ChatSession, ChatMessage], None]


_reply_channels: dict[str, ReplyChannel] = {}


def register_reply_channel(
    channel: str,
    *,
    blocked: Callable[[ChatSession, datetime], str | None],
    send: Callable[[ChatSession, ChatMessage], None],
) -> None:
    """Let agents take over and answer sessions of `channel` (in the channel's AppConfig.ready)."""
    _reply_channels[channel] = ReplyChannel(blocked=blocked, send=send)


def display_name(user: User | None) -> str:
    """How the visitor and the dashboard name an agent: first name, else the username."""
    if user is None:
        return "Someone"
    return user.first_name.strip() or user.get_username()


def takeover_unsupported(session: ChatSession) -> str | None:
    """Why agents cannot take this session over at all (its channel has no reply path), or None."""
    if session.channel == Channel.WEB or session.channel in _reply_channels:
        return None
    label = Channel(session.channel).label if session.channel in Channel.values else "this"
    return (
        f"{label} conversations are answered where they run (n8n reports them to leadchat); "
        "leadchat cannot send an agent's reply there."
    )


def reply_blocked(session: ChatSession, *, now: datetime | None = None) -> str | None:
    """Why an agent's reply could not reach this session's visitor now, or None."""
    unsupported = takeover_unsupported(session)
    if unsupported:
        return unsupported
    if session.is_deleted:
        return "This session is in the trash; restore it first."
    channel = _reply_channels.get(session.channel)
    if channel is None:
        return None
    return channel.blocked(session, now or timezone.now())


def _holder_refusal(holder: User | None, *, by: User) -> str:
    if holder is None:
        return "Nobody holds this session (the AI answers it): take it over first."
    if holder.pk == by.pk:
        return "You already hold this session."
    return f"{display_name(holder)} ({holder.get_username()}) holds this session."


def _history(session: ChatSession, *, by: User, to: str, now: datetime) -> None:
    LifecycleHistory.objects.create(
        session=session,
        kind=LifecycleHistory.Kind.TAKEOVER,
        from_status=HoldStatus.AGENT if to == HoldStatus.AI else HoldStatus.AI,
        to_status=to,
        by=by,
        at=now,
    )


REPLY_PERMISSION = "sessions_app.reply_chatsession"


def _check_role(by: User) -> None:
    # The API checks it too; here so that no other caller (a command, a script) bypasses it.
    if not by.has_perm(REPLY_PERMISSION):
        raise RoleRefused(
            "Your role may not take sessions over or write to visitors (QA reviewers only read)."
        )


def _locked_live(session: ChatSession) -> ChatSession:
    # The row alone, not `related=("held_by", ...)`: on PostgreSQL a takeover that waited for
    # another's lock gets the row as the winner committed it, but a joined user row as it was
    # when the statement began (none): the loser would be told "nobody holds it". held_by is
    # read after the lock, by its own query.
    locked = lock(session)
    if locked.is_deleted:
        raise SessionDeleted("This session is in the trash; restore it first.")
    return locked


def session_takeover(*, session: ChatSession, by: User) -> ChatSession:
    """`by` takes the session over from the AI; SessionHeld (naming the holder) if anyone has it."""
    _check_role(by)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked_live(session)
        if problem := takeover_unsupported(locked):
            raise TransitionNotAllowed(problem)
        if locked.held_by_id is not None:
            raise SessionHeld(_holder_refusal(locked.held_by, by=by), holder=locked.held_by)
        locked.held_by, locked.held_at, locked.updated_at = by, now, now
        locked.save(update_fields=["held_by", "held_at", "updated_at"])
        _history(locked, by=by, to=HoldStatus.AGENT, now=now)
        # A visitor who asked for a person has one now: the request is answered (never emailed
        # after this), in the same transaction as the takeover.
        human_request_clear(session=locked, by=by, now=now)
        message_add(
            session=locked,
            role=MessageRole.SYSTEM,
            text=_joined_line(locked, by),
            metadata={"kind": "takeover", "visible": True},
            sent_by=by,
        )
    copy_state(locked, session)
    return locked


def _joined_line(session: ChatSession, by: User) -> str:
    """ "Ana from Acme joined the chat", in the site's language, naming the site as visitors
    know it (its public title; never the internal name)."""
    site = session.site
    title = site.public_title.strip() if site is not None else ""
    with site_texts(site):
        if title:
            return gettext("%(agent)s from %(site)s joined the chat") % {
                "agent": display_name(by),
                "site": title,
            }
        return gettext("%(agent)s joined the chat") % {"agent": display_name(by)}


def session_handback(*, session: ChatSession, by: User) -> ChatSession:
    """Return the session to the AI. The holder may; so may an admin (an agent who left for the
    day must not keep a visitor from the AI)."""
    _check_role(by)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked_live(session)
        holder = locked.held_by
        is_admin = by.is_superuser or by.role == Role.ADMIN
        if holder is None or (holder.pk != by.pk and not is_admin):
            if holder is None:
                message = "Nobody holds this session: the AI already answers it."
            else:
                message = _holder_refusal(holder, by=by) + " Only they (or an admin) hand it back."
            raise SessionHeld(message, holder=holder)
        locked.held_by, locked.held_at, locked.updated_at = None, None, now
        locked.save(update_fields=["held_by", "held_at", "updated_at"])
        _history(locked, by=by, to=HoldStatus.AI, now=now)
        with site_texts(locked.site):
            left = gettext("%(agent)s left the chat; the assistant answers again") % {
                "agent": display_name(holder)
            }
        message_add(
            session=locked,
            role=MessageRole.SYSTEM,
            text=left,
            metadata={"kind": "handback", "visible": True},
            sent_by=by,
        )
    copy_state(locked, session)
    return locked


def agent_reply(*, session: ChatSession, by: User, text: str) -> ChatMessage:
    """Store the holder's message to the visitor (role `agent`) and, on a channel that needs it,
    queue its delivery in the same transaction. Refused, with nothing stored: empty or too long
    text (InvalidReply), a session `by` does not hold (SessionHeld), in the trash
    (SessionDeleted), or that the channel cannot reach now (ReplyUndeliverable)."""
    _check_role(by)
    clean = text.strip() if isinstance(text, str) else ""
    if not clean:
        raise InvalidReply("The message is empty.")
    if len(clean) > MAX_AGENT_MESSAGE_CHARS:
        raise InvalidReply(f"The message is longer than {MAX_AGENT_MESSAGE_CHARS:,} characters.")
    if "\x00" in clean:
        raise InvalidReply("The message contains a NUL character.")
    with transaction.atomic():
        locked = _locked_live(session)
        if locked.held_by_id != by.pk:
            raise SessionHeld(_holder_refusal(locked.held_by, by=by), holder=locked.held_by)
        if problem := reply_blocked(locked):
            raise ReplyUndeliverable(problem)
        message = message_add(
            session=locked,
            role=MessageRole.AGENT,
            text=clean,
            metadata={"kind": "agent_reply"},
            sent_by=by,
        )
        channel = _reply_channels.get(locked.channel)
        if channel is not None:
            channel.send(locked, message)
    copy_state(locked, session)
    return message
