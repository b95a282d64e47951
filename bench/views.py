"""The floor: the least Django can do for the database writes of a widget message round trip.

A widget message stores the visitor's message and the agent's reply and updates the session's
counters, in one transaction. This view does exactly those writes (row lock, two inserts, one
update) behind the same middleware, settings and gunicorn config, with nothing else: no DRF, no
token check, no agent. The product's round trip divided by this is the overhead the product adds.
"""

import json
import uuid

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sessions_app.models import ChatMessage, ChatSession, MessageRole

FLOOR_REPLY = "Thanks! Could you tell me your name?"


@csrf_exempt  # like the widget API: a JSON endpoint without cookies
@require_POST
def floor_message(request: HttpRequest, session_id: uuid.UUID) -> JsonResponse:
    try:
        text = json.loads(request.body)["text"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "Send JSON with a text field."}, status=400)
    if not isinstance(text, str) or not text.strip():
        return JsonResponse({"error": "text must be a non-empty string."}, status=400)
    now = timezone.now()
    with transaction.atomic():
        session = (
            ChatSession.objects.select_for_update()
            .only("pk", "message_count")
            .filter(public_id=session_id)
            .first()
        )
        if session is None:
            return JsonResponse({"error": "No such session."}, status=404)
        visitor = ChatMessage.objects.create(
            session=session, role=MessageRole.VISITOR, text=text, created_at=now
        )
        reply = ChatMessage.objects.create(
            session=session, role=MessageRole.AI, text=FLOOR_REPLY, created_at=now
        )
        ChatSession.objects.filter(pk=session.pk).update(
            message_count=F("message_count") + 2, last_activity_at=now, updated_at=now
        )
    return JsonResponse(
        {
            "messages": [
                {"id": m.pk, "role": m.role, "text": m.text, "created_at": m.created_at}
                for m in (visitor, reply)
            ]
        },
        status=201,
    )
