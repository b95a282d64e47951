"""A person's (an agent's) replies on Messenger: Meta's windows, and the Send API as the outbox.

Registered with `sessions_app.takeover.register_reply_channel` in WidgetConfig.ready(). Meta's
rules for a page writing to someone:
- within 24 hours of the person's last message, any reply: `messaging_type: RESPONSE`;
- up to 7 days after it, a reply by a human agent, tagged `HUMAN_AGENT`
  (`messaging_type: MESSAGE_TAG`), only if the app was granted the Human Agent permission: the
  site says so (`Site.messenger_human_agent_tag`), as Meta refuses the tag otherwise;
- after that, nothing (the composer says why, the API refuses, nothing is stored).
The reply is a `messenger` delivery like the AI's (retried, logged, its echo skipped), its
payload carrying when its window ends so the worker never sends it late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sessions_app.delivery import channel_reply_enqueue
from sessions_app.models import ChatMessage, ChatSession, DeliveryKind
from widget.channels.messenger import graph
from widget.channels.messenger.models import InboxKind, MessengerInboxEvent

RESPONSE_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"
# Events that are not the person writing: they do not open a window.
_NOT_INBOUND = (InboxKind.ECHO, InboxKind.DELIVERY, InboxKind.READ, InboxKind.UNKNOWN)


@dataclass(frozen=True)
class ReplyWindow:
    page_id: str
    psid: str
    ends_at: datetime
    tag: str  # "" for a RESPONSE, HUMAN_AGENT for a tagged message


def _last_inbound(session: ChatSession) -> MessengerInboxEvent | None:
    return (
        MessengerInboxEvent.objects.filter(session_id=session.pk)
        .exclude(kind__in=_NOT_INBOUND)
        .only("page_id", "psid", "event_at", "received_at")
        .order_by("-id")
        .first()
    )


def reply_window(session: ChatSession, now: datetime) -> tuple[ReplyWindow | None, str]:
    """The window an agent's reply to this session would go out in now, or None and why not."""
    event = _last_inbound(session)
    if event is None:
        return None, "This Messenger conversation has no message from the person to answer."
    last = event.event_at or event.received_at
    if now < last + RESPONSE_WINDOW:
        return ReplyWindow(event.page_id, event.psid, last + RESPONSE_WINDOW, ""), ""
    tag_allowed = session.site is not None and session.site.messenger_human_agent_tag
    if tag_allowed and now < last + HUMAN_AGENT_WINDOW:
        ends = last + HUMAN_AGENT_WINDOW
        return ReplyWindow(event.page_id, event.psid, ends, HUMAN_AGENT_TAG), ""
    if tag_allowed:
        return None, (
            "Cannot send on Messenger: the person's last message is more than 7 days old "
            f"({last:%Y-%m-%d %H:%M} UTC); Meta allows no reply after that, even by a person."
        )
    return None, (
        "Cannot send on Messenger: the person's last message is more than 24 hours old "
        f"({last:%Y-%m-%d %H:%M} UTC). Meta allows a person's reply up to 7 days only with the "
        "Human Agent permission (the site's Messenger settings)."
    )


def reply_blocked(session: ChatSession, now: datetime) -> str | None:
    window, why = reply_window(session, now)
    return None if window is not None else why


def reply_send(session: ChatSession, message: ChatMessage) -> None:
    """Queue the agent's stored reply (inside its transaction, so both commit or neither)."""
    window, why = reply_window(session, message.created_at)
    if window is None:  # checked a moment ago under the same lock; kept as a guard
        raise ValueError(why)
    payload = graph.reply_payload(
        page_id=window.page_id,
        psid=window.psid,
        text=message.text,
        quick_replies=[],
        window_ends_at=window.ends_at,
        tag=window.tag,
    )
    channel_reply_enqueue(
        kind=DeliveryKind.MESSENGER,
        event_type=graph.REPLY_EVENT,
        session=session,
        payload=payload,
    )
