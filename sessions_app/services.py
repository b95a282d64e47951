"""Every write to chat sessions goes through these functions (STYLE.md: one path per change).

The widget API, the dashboard, the admin, the commands and the tests call them; nothing else sets
a status. Each transition locks the row and checks the allowed-moves table kept beside the model
(both with `sessions_app.transitions`), saves only the fields it changed, and inside the
transaction writes its `LifecycleHistory` row (archive, trash) or sends its domain signal
(`lead_captured`). The two
hot, read-free writes (`message_add`, `sessions_close_idle`) are single conditional UPDATEs
instead, which lock the row and re-check the state in their WHERE or CASE.
"""

import hashlib
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Field, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import User
from sessions_app import signals
from sessions_app.email_quality import email_check
from sessions_app.errors import InvalidLead, SessionDeleted, TransitionNotAllowed
from sessions_app.leads import lead_key, normalize_email, normalize_name, normalize_phone
from sessions_app.models import (
    ARCHIVE_MOVES,
    COMPLETION_MOVES,
    ArchiveStatus,
    AutomationError,
    Channel,
    ChatMessage,
    ChatSession,
    CompletionStatus,
    DeliveryState,
    HumanRequestStatus,
    LifecycleHistory,
    MessageRole,
    TrashStatus,
    WidgetOpening,
)
from sessions_app.selectors import conversation_session
from sessions_app.transitions import MoveWording, check_move, copy_state, lock

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def hash_visitor_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def visitor_token_matches(session: ChatSession, token: str) -> bool:
    """Constant-time check of a visitor token against the stored hash."""
    if not token or not session.visitor_token_hash:
        return False
    return secrets.compare_digest(hash_visitor_token(token), session.visitor_token_hash)


class AgentVersionFields(TypedDict, total=False):
    """`message_add`'s agent version arguments (built by `widget.backends.version`)."""

    agent_backend: str
    agent_model: str
    agent_config_hash: str


COMPLETION_WORDING = MoveWording("completion")
ARCHIVE_WORDING = MoveWording("archive status")


def session_start(
    *,
    site: Any = None,
    channel: str = Channel.WEB,
    external_id: str = "",
    started_at: datetime | None = None,
    page_url: str = "",
    referrer: str = "",
    utm: Mapping[str, str] | None = None,
    user_agent: str = "",
    greeting: str = "",
    greeting_metadata: Mapping[str, Any] | None = None,
    greeting_agent: "AgentVersionFields | None" = None,
) -> tuple[ChatSession, str]:
    """Open a session; returns it with the raw visitor token (only its hash is stored).

    A conversation that lives on another channel (`external_id` set: its id there) gets no
    visitor token (the token returned is ""): no widget visitor may ever resume it. Such a
    session is started through `session_for_conversation`, which handles two starts at once.
    """
    token = "" if external_id else secrets.token_urlsafe(32)
    now = timezone.now()
    started = min(started_at, now) if started_at is not None else now
    utm = utm or {}
    with transaction.atomic():
        session = ChatSession.objects.create(
            site=site,
            channel=channel,
            external_id=external_id,
            visitor_token_hash=hash_visitor_token(token) if token else "",
            page_url=page_url[:2000],
            referrer=referrer[:2000],
            user_agent=user_agent[:500],
            started_at=started,
            last_activity_at=started,
            updated_at=now,
            **{field: (utm.get(field) or "")[:200] for field in UTM_FIELDS},
        )
        if greeting:
            message_add(
                session=session,
                role=MessageRole.AI,
                text=greeting,
                metadata=dict(greeting_metadata or {"kind": "greeting"}),
                # The agent version of the greeting: message_add's agent_* keyword arguments.
                **(greeting_agent or AgentVersionFields()),
            )
    return session, token


def session_for_conversation(
    *, channel: str, external_id: str, site: Any = None, started_at: datetime | None = None
) -> tuple[ChatSession, bool]:
    """The session of conversation `external_id` on `channel`, started if there is none;
    returns it with whether it was started now. `site` and `started_at` only apply to a start.

    Two requests seeing a new conversation at once both find nothing and both insert; the
    unique constraint on (channel, external_id) lets one insert through and makes the other
    wait for its commit and fail, and the loser then reads the winner's row. The insert runs in
    its own savepoint, so that failure leaves the caller's transaction usable.
    """
    if not external_id:
        raise ValueError("A conversation needs its id on the channel.")
    found = conversation_session(channel=channel, external_id=external_id)
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            session, _ = session_start(
                site=site, channel=channel, external_id=external_id, started_at=started_at
            )
    except IntegrityError:
        found = conversation_session(channel=channel, external_id=external_id)
        if found is None:  # not the race: some other constraint refused the row
            raise
        return found, False
    return session, True


def message_add(
    *,
    session: ChatSession,
    role: str,
    text: str,
    metadata: Mapping[str, Any] | None = None,
    external_id: str = "",
    created_at: datetime | None = None,
    agent_backend: str = "",
    agent_model: str = "",
    agent_config_hash: str = "",
    sent_by: User | None = None,
) -> ChatMessage:
    """Append a message to the transcript and update the session's counters and activity.

    A visitor writing to an `incomplete` session reopens it (`in_progress`, a move
    COMPLETION_MOVES allows). The caller's instance gets the same changes.

    `external_id` is the message's id on its channel: a second message with the same one in
    the session raises IntegrityError (the unique constraint) and stores nothing. `created_at`
    is when the message was written on that channel (default: now; never later than now): the
    session's start and last activity widen to take it in, and `updated_at` is now either way,
    so the dashboard's changes feed sees a message that arrives late with an old time.
    `agent_*` name the agent version of an AI message (`widget.backends.version`).
    `sent_by` is the user who wrote an `agent` message (sessions_app.takeover.agent_reply).
    """
    if role not in MessageRole.values:
        raise ValueError(f"Unknown message role {role!r}.")
    latency = reply_latency_ms(metadata or {}) if role == MessageRole.AI else None
    now = timezone.now()
    message = ChatMessage(
        session=session,
        role=role,
        text=text,
        metadata=dict(metadata or {}),
        external_id=external_id,
        created_at=min(created_at, now) if created_at is not None else now,
        agent_backend=agent_backend,
        agent_model=agent_model,
        agent_config_hash=agent_config_hash,
        sent_by=sent_by,
    )
    if not _message_store(message, latency=latency, now=now):
        if ChatSession.objects.filter(pk=session.pk).exists():
            raise SessionDeleted("This session was deleted; restore it before adding messages.")
        raise ChatSession.DoesNotExist(f"No chat session with id {session.pk}.")
    session.message_count += 1
    session.updated_at = now
    session.last_activity_at = max(session.last_activity_at, message.created_at)
    session.started_at = min(session.started_at, message.created_at)
    if latency is not None:
        session.ai_replies_timed += 1
        session.ai_latency_ms_total += latency
    if role == MessageRole.VISITOR:
        session.ai_engaged = True
        if session.completion_status == CompletionStatus.INCOMPLETE:
            session.completion_status = CompletionStatus.IN_PROGRESS
            session.ended_at = None
        # After the message is stored: a receiver (qa's reopen of a passed session) counts it.
        signals.visitor_turn_added.send(sender=ChatSession, session=session, message=message)
    return message


# message_add is the busiest write in the product: a widget message makes two, in two
# transactions (the visitor's message must be stored before the agent is asked). Under load its
# cost is round trips to the database, so on PostgreSQL the message and the session's counters
# are written by one statement (a data-modifying CTE, atomic on its own), and elsewhere by one
# short transaction. Either way the counters come from one conditional UPDATE that takes the
# row lock and computes every change from the row's current values, so concurrent writers
# (another message, the idle close, a lead) never overwrite each other, and nothing is read.
# The SQL is written out because the ORM expresses neither the CTE nor, cheaply, the UPDATE:
# compiling its F()/Case version took longer than the database took to run it (bench/).
# Every fragment is a constant; values only travel as parameters. On PostgreSQL the message is
# not saved through the ORM, so ChatMessage's pre_save/post_save are not sent (nothing listens
# to them): whatever must react to a new message hangs off `message_add`, which both paths share.
_COUNT_MESSAGE = ["message_count = message_count + 1", "last_activity_at = %s", "updated_at = %s"]
# A message with a time of its own (ingest's `created_at`, possibly older than the session's
# last activity): the session's span widens to take it in, never shrinks. Only that path pays
# for the CASEs.
_COUNT_DATED_MESSAGE = [
    "message_count = message_count + 1",
    "last_activity_at = CASE WHEN last_activity_at < %s THEN %s ELSE last_activity_at END",
    "started_at = CASE WHEN started_at > %s THEN %s ELSE started_at END",
    "updated_at = %s",
]
_COUNT_TIMED_REPLY = [
    "ai_replies_timed = ai_replies_timed + 1",
    "ai_latency_ms_total = ai_latency_ms_total + %s",
]
_COUNT_VISITOR = [
    "ai_engaged = %s",
    # In an UPDATE every right-hand side reads the row as it was, so both CASEs see the old
    # completion_status.
    "ended_at = CASE WHEN completion_status = %s THEN NULL ELSE ended_at END",
    "completion_status = CASE WHEN completion_status = %s THEN %s ELSE completion_status END",
]
_MESSAGE_COLUMNS = (
    "session",
    "role",
    "text",
    "created_at",
    "metadata",
    "external_id",
    "agent_backend",
    "agent_model",
    "agent_config_hash",
    "sent_by",
)


def _message_store(message: ChatMessage, *, latency: float | None, now: datetime) -> bool:
    """Insert `message` and count it on its session; False, with nothing written, when the
    session is in the trash or gone."""
    qn = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    stamp, now_stamp = adapt(message.created_at), adapt(now)
    params: list[str | float | None]
    if message.created_at == now:
        sets = list(_COUNT_MESSAGE)
        params = [stamp, stamp]
    else:
        sets = list(_COUNT_DATED_MESSAGE)
        params = [stamp, stamp, stamp, stamp, now_stamp]
    if latency is not None:
        sets += _COUNT_TIMED_REPLY
        params.append(latency)
    if message.role == MessageRole.VISITOR:
        sets += _COUNT_VISITOR
        incomplete, in_progress = CompletionStatus.INCOMPLETE, CompletionStatus.IN_PROGRESS
        params += [True, incomplete, incomplete, in_progress]
    params.append(message.session_id)
    update = (
        f"UPDATE {qn(ChatSession._meta.db_table)} SET {', '.join(sets)} "  # noqa: S608
        "WHERE id = %s AND deleted_at IS NULL"
    )
    if connection.vendor != "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update, params)
            if not cursor.rowcount:
                return False
            message.save(force_insert=True)
        return True
    meta = ChatMessage._meta
    # Concrete fields, not reverse relations: each has an attname and a column.
    fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in _MESSAGE_COLUMNS]
    values = [f.get_db_prep_save(getattr(message, f.attname), connection) for f in fields[1:]]
    insert = (
        f"WITH counted AS ({update} RETURNING id) "  # noqa: S608
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(cast(str, f.column)) for f in fields)}) "
        f"SELECT counted.id, {', '.join(['%s'] * len(values))} FROM counted RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [*params, *values])
        row = cursor.fetchone()
    if row is None:
        return False
    message.pk = row[0]
    message._state.adding, message._state.db = False, connection.alias
    return True


def reply_latency_ms(metadata: Mapping[str, Any]) -> float | None:
    """The `latency_ms` an agent backend recorded on a reply, when it is a usable number.

    Backends write an int; a numeric string is accepted too. Anything else (a bool, "slow",
    a negative or non-finite value) is left out of the averages rather than guessed at.
    """
    value = metadata.get("latency_ms")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def lead_capture(
    *,
    session: ChatSession,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    data: Mapping[str, Any] | None = None,
    email_quality: str | None = None,
    consent_text: str | None = None,
    declined_reason: str | None = None,
) -> ChatSession:
    """Store lead fields as they arrive; complete the session once it has a name and valid email.

    Fields may come in pieces (the name first, the email later). Invalid values raise
    `InvalidLead` and store nothing. `lead_captured` is sent once, inside the transaction that
    completes the session, so the webhook outbox row commits with it.

    An email is stored with its `email_quality`: pass the caller's check (run outside any
    transaction, see `sessions_app.email_quality`), or it is checked here, before the lock. A
    phone is stored in E.164 (the site's default region reads national numbers); one that is
    not a valid number is not stored as the phone, but kept as given in `lead_data`
    (`phone_as_given`), so what the visitor typed is not lost. `consent_text` is the privacy
    line shown before the email was asked, stored with it.
    """
    clean_name = normalize_name(name) if name is not None else None
    clean_email = normalize_email(email) if email is not None else None
    if clean_email is not None and email_quality is None:
        email_quality = email_check(clean_email).quality
    clean_phone, phone_as_given = None, None
    if phone is not None and phone.strip():
        region = session.site.phone_default_region if session.site_id and session.site else ""
        try:
            clean_phone = normalize_phone(phone, region=region)
        except InvalidLead:
            phone_as_given = phone.strip()[:50]
    now = timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if locked.is_deleted:
            raise SessionDeleted("This session was deleted; restore it before changing the lead.")
        fields = ["updated_at"]
        if clean_name is not None:
            locked.lead_name = clean_name
            fields.append("lead_name")
        if clean_email is not None:
            locked.lead_email = clean_email
            locked.lead_key = lead_key(clean_email)
            locked.email_quality = email_quality or ""
            fields += ["lead_email", "lead_key", "email_quality"]
            if consent_text is not None:
                locked.lead_consent_text = consent_text
                fields.append("lead_consent_text")
        if clean_phone is not None:
            locked.lead_phone = clean_phone
            fields.append("lead_phone")
        extra = {**(data or {})}
        if phone_as_given is not None:
            extra["phone_as_given"] = phone_as_given
        if extra:
            locked.lead_data = {**locked.lead_data, **extra}
            fields.append("lead_data")
        if declined_reason is not None:
            locked.lead_declined_reason = declined_reason[:200]
            fields.append("lead_declined_reason")
        completes = (
            bool(locked.lead_name and locked.lead_email)
            and locked.completion_status != CompletionStatus.COMPLETE
        )
        if completes:
            check_move(
                COMPLETION_MOVES,
                locked.completion_status,
                CompletionStatus.COMPLETE,
                wording=COMPLETION_WORDING,
            )
            locked.completion_status = CompletionStatus.COMPLETE
            locked.lead_captured_at = now
            locked.ended_at = None
            fields += ["completion_status", "lead_captured_at", "ended_at"]
        locked.updated_at = now
        locked.save(update_fields=fields)
        if completes:
            signals.lead_captured.send(sender=ChatSession, session=locked)
    copy_state(locked, session)
    return locked


def session_archive(*, session: ChatSession, by: User | None) -> ChatSession:
    return _set_archive(session=session, by=by, target=ArchiveStatus.ARCHIVED)


def session_unarchive(*, session: ChatSession, by: User | None) -> ChatSession:
    return _set_archive(session=session, by=by, target=ArchiveStatus.ACTIVE)


def _set_archive(*, session: ChatSession, by: User | None, target: str) -> ChatSession:
    now = timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if locked.is_deleted:
            raise SessionDeleted("This session is in the trash; restore it first.")
        from_status = locked.archive_status
        check_move(ARCHIVE_MOVES, from_status, target, wording=ARCHIVE_WORDING)
        locked.archive_status = target
        archived = target == ArchiveStatus.ARCHIVED
        locked.archived_at = now if archived else None
        locked.archived_by = by if archived else None
        locked.updated_at = now
        locked.save(update_fields=["archive_status", "archived_at", "archived_by", "updated_at"])
        # The session only knows who archived it while it is archived; the history keeps both.
        LifecycleHistory.objects.create(
            session=locked,
            kind=LifecycleHistory.Kind.ARCHIVE,
            from_status=from_status,
            to_status=target,
            by=by,
            at=now,
        )
    copy_state(locked, session)
    return locked


def session_delete(*, session: ChatSession, by: User | None) -> ChatSession:
    """Soft delete: the session moves to the trash, restorable until purged."""
    return _set_trash(session=session, by=by, deleted=True)


def session_restore(*, session: ChatSession, by: User | None) -> ChatSession:
    return _set_trash(session=session, by=by, deleted=False)


def _set_trash(*, session: ChatSession, by: User | None, deleted: bool) -> ChatSession:
    now = timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if locked.is_deleted == deleted:
            state = "already in the trash" if deleted else "not in the trash"
            raise TransitionNotAllowed(f"This session is {state}.")
        locked.deleted_at = now if deleted else None
        locked.deleted_by = by if deleted else None
        locked.updated_at = now
        locked.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        # As for the archive: a restore clears `deleted_by`, the history keeps who trashed it.
        trashed, live = TrashStatus.TRASHED, TrashStatus.LIVE
        LifecycleHistory.objects.create(
            session=locked,
            kind=LifecycleHistory.Kind.TRASH,
            from_status=live if deleted else trashed,
            to_status=trashed if deleted else live,
            by=by,
            at=now,
        )
    copy_state(locked, session)
    return locked


def human_request(*, session: ChatSession, now: datetime | None = None) -> bool:
    """The visitor asked for a person: mark the session "needs a human" (sorted first, counted,
    notified). True if this made the request; False if one was already open (asking twice is
    one request, and its email clock keeps running from the first).

    Called by widget.services inside the transaction that stores the agent's answer, so the
    flag and the message telling the visitor commit together.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if locked.is_deleted:
            raise SessionDeleted("This session was deleted; restore it first.")
        if locked.needs_human:
            copy_state(locked, session)
            return False
        locked.needs_human = True
        locked.human_requested_at = now
        locked.human_notified_at = None  # a new request gets its own email
        locked.updated_at = now
        locked.save(
            update_fields=["needs_human", "human_requested_at", "human_notified_at", "updated_at"]
        )
        LifecycleHistory.objects.create(
            session=locked,
            kind=LifecycleHistory.Kind.HUMAN,
            from_status=HumanRequestStatus.NONE,
            to_status=HumanRequestStatus.REQUESTED,
            by=None,  # the visitor
            at=now,
        )
    copy_state(locked, session)
    return True


def human_request_clear(
    *, session: ChatSession, by: User | None, now: datetime | None = None
) -> bool:
    """Someone answered the request for a person: an agent took the session over (the takeover
    service calls this inside its own transaction) or dismissed it from the dashboard. True if
    a request was open; False, with nothing written, if none was (two agents at once: the first
    clears it). A cleared request is never emailed: the email job re-checks the flag under the
    row lock.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = lock(session)
        if not locked.needs_human:
            copy_state(locked, session)
            return False
        locked.needs_human = False
        locked.updated_at = now
        # human_requested_at stays: when the visitor last asked (shown on the session page).
        locked.save(update_fields=["needs_human", "updated_at"])
        LifecycleHistory.objects.create(
            session=locked,
            kind=LifecycleHistory.Kind.HUMAN,
            from_status=HumanRequestStatus.REQUESTED,
            to_status=HumanRequestStatus.NONE,
            by=by,
            at=now,
        )
    copy_state(locked, session)
    return True


def human_request_notify_claim(
    *, session_id: int, requested_before: datetime, now: datetime
) -> bool:
    """Take the one email of a waiting request: True for exactly one caller, and only while the
    request is still open, older than `requested_before` and not emailed yet.

    One conditional UPDATE: it takes the row lock and re-checks all three in its WHERE, so a
    second worker, or an agent clearing the request at the same moment, can never get a second
    email out (call it inside the transaction that queues the email, so both commit or neither).
    """
    return bool(
        ChatSession.objects.filter(
            pk=session_id,
            needs_human=True,
            human_notified_at__isnull=True,
            human_requested_at__lte=requested_before,
            deleted_at__isnull=True,
        ).update(human_notified_at=now)
    )


def widget_opening_count(*, site_id: int, now: datetime | None = None) -> None:
    """Count one opening of the site's chat (by a visitor without a conversation) in its hour.

    One INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 (the same text on SQLite and
    PostgreSQL): two visitors opening at once both count, where a read-then-write would lose
    one, and a get_or_create would fail the second insert on the unique (site, hour).
    """
    hour = (now or timezone.now()).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    qn = connection.ops.quote_name
    table = qn(WidgetOpening._meta.db_table)
    sql = (
        f"INSERT INTO {table} (site_id, hour, count) VALUES (%s, %s, 1) "  # noqa: S608
        f"ON CONFLICT (site_id, hour) DO UPDATE SET count = {table}.count + 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [site_id, connection.ops.adapt_datetimefield_value(hour)])


def sessions_close_idle(*, idle_for: timedelta | None = None) -> int:
    """Mark sessions idle longer than `idle_for` without a lead as `incomplete`.

    One conditional UPDATE: the WHERE re-checks `in_progress`, so a session that a visitor
    message or a lead capture moved meanwhile (both lock the row) is never overwritten.
    """
    if idle_for is None:
        idle_for = timedelta(minutes=settings.SESSION_IDLE_TIMEOUT_MINUTES)
    now = timezone.now()
    return ChatSession.objects.filter(
        completion_status=CompletionStatus.IN_PROGRESS,
        last_activity_at__lt=now - idle_for,
        deleted_at__isnull=True,
    ).update(completion_status=CompletionStatus.INCOMPLETE, ended_at=now, updated_at=now)


def session_delivery_state_set(
    *, session: ChatSession, state: str, now: datetime | None = None
) -> bool:
    """Set where the session's lead webhook stands: the one writer of `delivery_state`.

    Delivery derives the state from its outbox rows and calls this with the session row already
    locked (inside `lead_capture`, or after `select_for_update`). True if the state changed;
    a change bumps `updated_at`, so the dashboard's changes feed shows delivery progress live.
    """
    if state not in DeliveryState.values:
        raise ValueError(f"Unknown delivery state {state!r}.")
    if session.delivery_state == state:
        return False
    session.delivery_state = state
    session.updated_at = now or timezone.now()
    session.save(update_fields=["delivery_state", "updated_at"])
    return True


def sessions_delivery_state_set(
    *, sessions: Sequence[ChatSession], state: str, now: datetime | None = None
) -> int:
    """`session_delivery_state_set` for several sessions at once, in one UPDATE: the delivery
    worker's batches (one statement per finished lead would cost more than its send).

    The sessions are already locked by the caller. Returns how many changed.
    """
    if state not in DeliveryState.values:
        raise ValueError(f"Unknown delivery state {state!r}.")
    changing = [session for session in sessions if session.delivery_state != state]
    if not changing:
        return 0
    now = now or timezone.now()
    ChatSession.objects.filter(pk__in=[session.pk for session in changing]).update(
        delivery_state=state, updated_at=now
    )
    for session in changing:
        session.delivery_state = state
        session.updated_at = now
    return len(changing)


def automation_error_record(
    *,
    message: str,
    source: str = AutomationError.Source.N8N,
    workflow: str = "",
    node: str = "",
    execution_id: str = "",
    execution_url: str = "",
    details: Mapping[str, Any] | None = None,
    session: ChatSession | None = None,
) -> tuple[AutomationError, bool]:
    """Store an automation error; a replayed execution id returns the stored row (created=False)."""
    values = {
        "message": message,
        "workflow": workflow[:255],
        "node": node[:255],
        "execution_url": execution_url[:2000],
        "details": dict(details or {}),
        "session": session,
    }
    if not execution_id:
        return AutomationError.objects.create(source=source, **values), True
    # get_or_create leans on the unique constraint, so two concurrent replays store one row.
    return AutomationError.objects.get_or_create(
        source=source, execution_id=execution_id[:255], defaults=values
    )


def automation_error_resolve(*, error: AutomationError, by: User | None) -> AutomationError:
    if error.resolved:
        return error
    error.resolved = True
    error.resolved_at = timezone.now()
    error.resolved_by = by
    error.save(update_fields=["resolved", "resolved_at", "resolved_by"])
    return error


# --- Permanent erasure (GDPR) and retention purge ----------------------------------------------
# Unlike the trash, these remove rows for good. Both send `sessions_erasing` inside the
# transaction, before deleting, so every app scrubs its own rows holding these people's data
# (webhook payloads, QA emails, ...) in the same commit: either all of it goes or none.

PURGE_BATCH = 500


@dataclass
class ErasureReport:
    """What an erasure or purge removed (or, on a dry run, would remove)."""

    sessions: list[str] = field(default_factory=list)  # public ids
    messages: int = 0
    automation_errors: int = 0
    dry_run: bool = False

    def add(self, other: "ErasureReport") -> None:
        self.sessions += other.sessions
        self.messages += other.messages
        self.automation_errors += other.automation_errors


def _text_contains(value: str) -> Q:
    """An automation error whose message or details mention `value` (case-insensitive)."""
    return Q(message__icontains=value) | Q(details_text__icontains=value)


def _erase(
    *, session_ids: list[int], error_filter: Q | None, emails: list[str], dry_run: bool
) -> ErasureReport:
    sessions = ChatSession.objects.filter(pk__in=session_ids)
    errors = AutomationError.objects.annotate(details_text=Cast("details", TextField()))
    error_q = Q(session_id__in=session_ids)
    if error_filter is not None:
        error_q |= error_filter
    errors = errors.filter(error_q)
    report = ErasureReport(
        sessions=[str(p) for p in sessions.values_list("public_id", flat=True)],
        messages=ChatMessage.objects.filter(session_id__in=session_ids).count(),
        automation_errors=errors.count(),
        dry_run=dry_run,
    )
    if dry_run:
        return report
    signals.sessions_erasing.send(sender=ChatSession, session_ids=session_ids, emails=emails)
    # Errors first: their FK is SET NULL, which would otherwise orphan the details they hold.
    AutomationError.objects.filter(pk__in=list(errors.values_list("pk", flat=True))).delete()
    ChatMessage.objects.filter(session_id__in=session_ids).delete()
    sessions.delete()
    return report


def lead_erase(*, email: str, dry_run: bool = False) -> ErasureReport:
    """Erase one person for good: every session with this lead email or mentioning it in the
    transcript (a visitor may type it before it validates), their messages, and automation errors
    of those sessions or mentioning the email or the captured name.

    Raises InvalidLead when `email` is not an email address.
    """
    # Refuses "bob" or "" with a clear message; the key finds the person the Leads page shows.
    person = lead_key(normalize_email(email))
    needle = email.strip()
    with transaction.atomic():
        session_ids = list(
            ChatSession.objects.filter(
                Q(lead_email__iexact=needle)
                | Q(lead_key=person)
                | Q(
                    Exists(
                        ChatMessage.objects.filter(session=OuterRef("pk"), text__icontains=needle)
                    )
                )
            )
            .select_for_update()
            .values_list("pk", flat=True)
        )
        names = {
            name
            for name in ChatSession.objects.filter(pk__in=session_ids).values_list(
                "lead_name", flat=True
            )
            if name
        }
        emails = sorted(
            {needle.lower()}
            | {
                e.lower()
                for e in ChatSession.objects.filter(pk__in=session_ids).values_list(
                    "lead_email", flat=True
                )
                if e
            }
        )
        error_filter = _text_contains(needle)
        for name in names:
            error_filter |= _text_contains(name)
        return _erase(
            session_ids=session_ids, error_filter=error_filter, emails=emails, dry_run=dry_run
        )


def sessions_purge(
    *,
    older_than: timedelta,
    trash_older_than: timedelta | None = None,
    dry_run: bool = False,
    batch_size: int = PURGE_BATCH,
) -> ErasureReport:
    """Remove for good sessions started more than `older_than` ago, sessions in the trash for
    more than `trash_older_than` (default TRASH_RETENTION_DAYS), and automation errors older than
    `older_than`.

    Works in batches, each in its own short transaction, so a purge of years of data never holds
    locks on (or memory for) all of it at once; an interrupted purge resumes where it stopped.
    """
    if trash_older_than is None:
        trash_older_than = timedelta(days=settings.TRASH_RETENTION_DAYS)
    now = timezone.now()
    due = ChatSession.objects.filter(
        Q(started_at__lt=now - older_than) | Q(deleted_at__lt=now - trash_older_than)
    )
    old_errors = Q(created_at__lt=now - older_than)
    total = ErasureReport(dry_run=dry_run)
    if dry_run:
        ids = list(due.values_list("pk", flat=True))
        total.add(_erase(session_ids=ids, error_filter=old_errors, emails=[], dry_run=True))
        return total
    first = True
    while True:
        with transaction.atomic():
            ids = list(due.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids and not first:
                break
            emails = sorted(
                {
                    e.lower()
                    for e in ChatSession.objects.filter(pk__in=ids).values_list(
                        "lead_email", flat=True
                    )
                    if e
                }
            )
            # Old errors without a session go with the first batch.
            total.add(
                _erase(
                    session_ids=ids,
                    error_filter=old_errors if first else None,
                    emails=emails,
                    dry_run=False,
                )
            )
        first = False
        if len(ids) < batch_size:
            break
    return total
