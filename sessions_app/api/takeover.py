"""Staff API of the takeover (issue 14): take over, hand back, the live transcript and replies.

    POST /api/sessions/{id}/takeover/    the AI stops answering; you hold the session
    POST /api/sessions/{id}/handback/    the AI answers again (the holder, or an admin)
    GET  /api/sessions/{id}/messages/?after=N   messages since a cursor, and who holds it
    POST /api/sessions/{id}/messages/ {"text": ...}   the holder writes to the visitor

One service per write (sessions_app.takeover); the dashboard's session page calls these too.
Refusals: 409 naming who holds the session (or that nobody does), 409 for a session in the
trash or a channel that cannot be reached now (Messenger's window), 400 for an empty or too long
text, 403 for QA reviewers (read only).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import signed_in_user
from accounts.models import User
from leadchat.api import error_response
from sessions_app import selectors, takeover
from sessions_app.api.permissions import CanReplyToSessions, CanViewSessions
from sessions_app.api.serializers import MessageSerializer
from sessions_app.api.views import (
    BAD_PARAMS,
    NO_AUTH,
    NO_ROLE,
    NOT_FOUND,
    ONE_ROW_ERRORS,
    Conflict,
    StaffAPIView,
    _get_session,
)
from sessions_app.errors import DomainError, SessionDeleted
from sessions_app.live import visitor_is_typing
from sessions_app.models import ChatSession

HELD = error_response(
    "Someone else holds the session (the message names them), nobody does, the session is in "
    "the trash, or its channel cannot be reached now (the message says why)."
)


class LiveStateSerializer(serializers.Serializer):
    held_by = serializers.CharField(
        allow_null=True, help_text="Username of the agent holding the session; null: the AI."
    )
    held_by_name = serializers.CharField(help_text="How the visitor sees that agent named.")
    held_at = serializers.DateTimeField(allow_null=True)
    reply_blocked = serializers.CharField(
        allow_null=True,
        help_text="Why an agent's reply could not reach the visitor now (null: it can).",
    )
    poll_ms = serializers.IntegerField(help_text="How long to wait before the next poll.")
    visitor_typing = serializers.BooleanField(
        help_text="Whether the visitor is typing now (held sessions; a hint of a few seconds)."
    )


class MessagesSinceSerializer(LiveStateSerializer):
    messages = MessageSerializer(many=True)
    cursor = serializers.IntegerField(help_text="Send it back as `after` in the next poll.")


class ReplyOutSerializer(LiveStateSerializer):
    message = MessageSerializer()


class MessagesSinceParams(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        max_value=2**63 - 1,
        required=False,
        default=0,
        help_text="The previous answer's `cursor` (0: the whole transcript, 100 at a time).",
    )


class _TextField(serializers.CharField):
    """Text only: DRF's CharField would store `{"text": 42}` as "42"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("The message must be text (a JSON string).")
        return super().to_internal_value(data)


class ReplyIn(serializers.Serializer):
    # Blankness is the service's rule (one wording for the API and the dashboard); the length
    # is checked here too so that the schema documents it.
    text = _TextField(
        max_length=takeover.MAX_AGENT_MESSAGE_CHARS,
        allow_blank=True,
        trim_whitespace=False,
        error_messages={
            "required": "The message text is missing.",
            "max_length": "The message is longer than 4,000 characters.",
        },
    )


def _state(session: ChatSession) -> dict[str, Any]:
    holder: User | None = session.held_by if session.held_by_id is not None else None
    return {
        "held_by": holder.get_username() if holder is not None else None,
        "held_by_name": takeover.display_name(holder) if holder is not None else "",
        "held_at": session.held_at,
        "reply_blocked": takeover.reply_blocked(session),
        "poll_ms": settings.LIVE_POLL_MS,
        "visitor_typing": holder is not None and visitor_is_typing(session_pk=session.pk),
    }


def _fresh(session: ChatSession) -> ChatSession:
    return ChatSession.objects.select_related("site", "held_by").get(pk=session.pk)


def _refusal(exc: DomainError) -> Conflict:
    return Conflict(str(exc))


class _TakeoverMove(StaffAPIView):
    permission_classes = [CanReplyToSessions]

    def move(self, *, session: ChatSession, by: User) -> ChatSession:
        raise NotImplementedError

    def post(self, request: Request, public_id: Any) -> Response:
        session = _get_session(public_id)
        user = signed_in_user(request)
        try:
            self.move(session=session, by=user)
        except takeover.RoleRefused as exc:
            return Response({"error": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except DomainError as exc:
            raise _refusal(exc) from None
        return Response(LiveStateSerializer(_state(_fresh(session))).data)


class SessionTakeoverApi(_TakeoverMove):
    @extend_schema(
        operation_id="sessions_takeover",
        summary="Take a session over from the AI",
        description="The AI stops answering; the visitor sees that you joined; only you may "
        "write to them until you hand it back. 409 names who holds it already.",
        request=None,
        responses={200: LiveStateSerializer, **ONE_ROW_ERRORS, 409: HELD},
        tags=["takeover"],
    )
    def post(self, request: Request, public_id: Any) -> Response:
        return super().post(request, public_id)

    def move(self, *, session: ChatSession, by: User) -> ChatSession:
        return takeover.session_takeover(session=session, by=by)


class SessionHandbackApi(_TakeoverMove):
    @extend_schema(
        operation_id="sessions_handback",
        summary="Hand a session back to the AI",
        description="By the agent holding it (or an admin). The AI answers the visitor's next "
        "message and sees what the agent wrote.",
        request=None,
        responses={200: LiveStateSerializer, **ONE_ROW_ERRORS, 409: HELD},
        tags=["takeover"],
    )
    def post(self, request: Request, public_id: Any) -> Response:
        return super().post(request, public_id)

    def move(self, *, session: ChatSession, by: User) -> ChatSession:
        return takeover.session_handback(session=session, by=by)


class SessionMessagesApi(StaffAPIView):
    """GET: the live transcript since a cursor (any reader). POST: the holder's reply."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [CanReplyToSessions()]
        return [CanViewSessions()]

    @extend_schema(
        operation_id="sessions_messages_since",
        summary="A session's messages since a cursor, and who holds it (live view)",
        description="The session page polls it every `poll_ms`; an empty `messages` is the "
        "usual answer. Also for sessions in the trash.",
        parameters=[MessagesSinceParams],
        responses={200: MessagesSinceSerializer, 400: BAD_PARAMS, **ONE_ROW_ERRORS},
        tags=["takeover"],
    )
    def get(self, request: Request, public_id: Any) -> Response:
        params = MessagesSinceParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            session = ChatSession.objects.select_related("site", "held_by").get(public_id=public_id)
        except ChatSession.DoesNotExist:
            raise NotFound("No session with this id.") from None
        messages, cursor = selectors.session_messages_since(
            session=session, after=params.validated_data["after"]
        )
        body = {**_state(session), "messages": messages, "cursor": cursor}
        return Response(MessagesSinceSerializer(body).data)

    @extend_schema(
        operation_id="sessions_reply",
        summary="Write to the visitor (the agent holding the session)",
        description="Stored as an `agent` message with you as its sender; the widget shows it "
        "within seconds, Messenger gets it through the Send API (inside Meta's window).",
        request=ReplyIn,
        responses={
            201: ReplyOutSerializer,
            400: BAD_PARAMS,
            401: NO_AUTH,
            403: NO_ROLE,
            404: NOT_FOUND,
            409: HELD,
        },
        examples=[OpenApiExample("Reply", request_only=True, value={"text": "Hi, Ana here."})],
        tags=["takeover"],
    )
    def post(self, request: Request, public_id: Any) -> Response:
        body = ReplyIn(data=request.data)
        body.is_valid(raise_exception=True)
        session = _get_session(public_id)
        user = signed_in_user(request)
        try:
            message = takeover.agent_reply(
                session=session, by=user, text=body.validated_data["text"]
            )
        except takeover.InvalidReply as exc:
            raise ValidationError({"text": [str(exc)]}) from None
        except takeover.RoleRefused as exc:
            return Response({"error": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except (takeover.SessionHeld, takeover.ReplyUndeliverable, SessionDeleted) as exc:
            raise _refusal(exc) from None
        fresh = _fresh(session)
        out = {**_state(fresh), "message": message}
        return Response(ReplyOutSerializer(out).data, status=status.HTTP_201_CREATED)
