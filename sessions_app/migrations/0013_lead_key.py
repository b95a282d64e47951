import hashlib

from django.db import migrations, models

BATCH = 2000


def _key(email):
    # A frozen copy of sessions_app.leads.lead_key: a migration must keep meaning what it meant.
    cleaned = email.strip().lower()
    return hashlib.sha256(cleaned.encode()).hexdigest() if cleaned else ""


def lead_keys_fill(apps, schema_editor):
    """Give every stored lead its person key, in batches by primary key (flat memory)."""
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    last = 0
    while True:
        rows = list(
            ChatSession.objects.filter(pk__gt=last)
            .exclude(lead_email="")
            .order_by("pk")
            .only("pk", "lead_email")[:BATCH]
        )
        if not rows:
            break
        for row in rows:
            row.lead_key = _key(row.lead_email)
        ChatSession.objects.bulk_update(rows, ["lead_key"])
        last = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0010_messenger_delivery"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatsession",
            name="lead_key",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=64
            ),
        ),
        migrations.RunPython(lead_keys_fill, migrations.RunPython.noop, elidable=True),
        # After the fill: building the index once beats updating it row by row.
        migrations.AddIndex(
            model_name="chatsession",
            index=models.Index(
                condition=models.Q(
                    models.Q(("lead_key", ""), _negated=True), ("deleted_at__isnull", True)
                ),
                fields=[
                    "lead_key",
                    "-started_at",
                    "-id",
                    "last_activity_at",
                    "lead_captured_at",
                    "archive_status",
                ],
                name="session_lead_key",
            ),
        ),
    ]
