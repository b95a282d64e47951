"""Per-session AI latency counters, filled from the replies already stored.

The backfill reads the AI messages once, in Python, with the same rule `message_add` applies
from now on (`reply_latency_ms`, copied here because a migration must not change when the
service does), so both databases get the same figures whatever JSON their rows hold.
"""

import math

from django.db import migrations, models

BATCH = 2000


def reply_latency_ms(metadata):
    value = metadata.get("latency_ms") if isinstance(metadata, dict) else None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def counters_backfill(apps, schema_editor):
    ChatMessage = apps.get_model("sessions_app", "ChatMessage")
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    totals: dict[int, list[float]] = {}
    replies = (
        ChatMessage.objects.filter(role="ai", metadata__has_key="latency_ms")
        .values_list("session_id", "metadata")
        .order_by()
    )
    for session_id, metadata in replies.iterator(chunk_size=BATCH):
        latency = reply_latency_ms(metadata)
        if latency is not None:
            entry = totals.setdefault(session_id, [0, 0.0])
            entry[0] += 1
            entry[1] += latency
    ids = list(totals)
    for start in range(0, len(ids), BATCH):
        rows = []
        for session in ChatSession.objects.filter(pk__in=ids[start : start + BATCH]).only("pk"):
            session.ai_replies_timed, session.ai_latency_ms_total = totals[session.pk]
            rows.append(session)
        ChatSession.objects.bulk_update(rows, ["ai_replies_timed", "ai_latency_ms_total"])


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0002_outbox_webhooks_emails"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatsession",
            name="ai_latency_ms_total",
            field=models.FloatField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="chatsession",
            name="ai_replies_timed",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(counters_backfill, migrations.RunPython.noop, elidable=True),
    ]
