"""Carry DRF authtoken keys over to knox as digests, then drop the plain-text table.

Until now staff API tokens were DRF's `authtoken_token` rows: the key itself, in plain text,
forever. Each key becomes a knox token whose digest is the key's SHA-512 (knox.crypto), so a
script that sends `Authorization: Token <its old key>` keeps working, now with an expiry
(API_TOKEN_TTL_DAYS from this migration). Then the plain-text table is dropped and
`rest_framework.authtoken`'s migration records are removed, so the app could be installed
again cleanly. On a database that never had the table (a fresh install) this does nothing.
Not reversible: the keys are gone once hashed.
"""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

LEGACY_TABLE = "authtoken_token"


def carry_over_legacy_tokens(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    quoted = schema_editor.quote_name(LEGACY_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id FROM {quoted}")  # noqa: S608
        rows = cursor.fetchall()
    expiry = timezone.now() + settings.REST_KNOX["TOKEN_TTL"]
    AuthToken.objects.bulk_create(
        AuthToken(
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user_id=user_id,
            expiry=expiry,
        )
        for key, user_id in rows
    )
    schema_editor.execute(f"DROP TABLE {quoted}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunPython(carry_over_legacy_tokens, migrations.RunPython.noop, elidable=False),
    ]
