"""Trigram indexes behind the QA console's search (lead name, lead email, message text).

The console searches with Django's `icontains`, which PostgreSQL runs as
`UPPER(col::text) LIKE UPPER('%term%')`. A GIN trigram index on exactly that expression lets
those substring searches use an index instead of scanning a million-row messages table.

PostgreSQL only: SQLite has no trigram indexes (and embedded installs are small). The indexes
are built CONCURRENTLY so that adding them to a live database never blocks the widget's writes;
that needs a non-atomic migration.
"""

from django.db import migrations

INDEXES = [
    ("qa_message_text_trgm", "sessions_app_chatmessage", 'UPPER("text"::text)'),
    ("qa_session_lead_name_trgm", "sessions_app_chatsession", 'UPPER("lead_name"::text)'),
    ("qa_session_lead_email_trgm", "sessions_app_chatsession", 'UPPER("lead_email"::text)'),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, expression in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
            f"ON {table} USING gin (({expression}) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("sessions_app", "0001_initial"),
        ("qa", "0001_qa_history"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
