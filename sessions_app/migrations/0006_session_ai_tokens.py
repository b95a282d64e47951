"""Per-session AI usage counters (widget.budget), filled from the replies already stored.

Tokens come from each AI reply's `metadata["tokens"]["total"]` (what the OpenAI-compatible
backend records); calls are the replies of a network backend (n8n, openai) that are not a
greeting or a refusal note. The rule is copied here, as in 0003, because a migration must not
change when the code does. Read once, in Python, so both databases get the same figures.
"""

from django.db import migrations, models

BATCH = 2000
NETWORK_BACKENDS = ("n8n", "openai")


def reply_usage(metadata):
    """(calls, tokens) one stored AI message stands for."""
    if not isinstance(metadata, dict) or metadata.get("kind"):
        return 0, 0
    tokens = metadata.get("tokens")
    total = tokens.get("total") if isinstance(tokens, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        total = 0
    called = metadata.get("backend") in NETWORK_BACKENDS and not metadata.get("budget")
    return int(called), total


def counters_backfill(apps, schema_editor):
    ChatMessage = apps.get_model("sessions_app", "ChatMessage")
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    totals: dict[int, list[int]] = {}
    replies = (
        ChatMessage.objects.filter(role="ai", metadata__has_key="backend")
        .values_list("session_id", "metadata")
        .order_by()
    )
    for session_id, metadata in replies.iterator(chunk_size=BATCH):
        calls, tokens = reply_usage(metadata)
        if calls or tokens:
            entry = totals.setdefault(session_id, [0, 0])
            entry[0] += calls
            entry[1] += tokens
    ids = list(totals)
    for start in range(0, len(ids), BATCH):
        rows = []
        for session in ChatSession.objects.filter(pk__in=ids[start : start + BATCH]).only("pk"):
            session.ai_calls, session.ai_tokens = totals[session.pk]
            rows.append(session)
        ChatSession.objects.bulk_update(rows, ["ai_calls", "ai_tokens"])


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0005_delivery_faults"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatsession",
            name="ai_calls",
            field=models.PositiveIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="chatsession",
            name="ai_tokens",
            field=models.PositiveBigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.RunPython(counters_backfill, migrations.RunPython.noop, elidable=True),
    ]
