"""Trigram indexes for the global search (and Django admin's `icontains` search).

GIN over UPPER(column) gin_trgm_ops: Django's `icontains` compiles to
`UPPER("col"::text) LIKE UPPER('%term%')`, which this index serves, so one index per
column serves the header search, the accounts table's `q` filter and admin's search_fields.
Built CONCURRENTLY (no write lock on a 1M-row table), hence a non-atomic migration; IF NOT
EXISTS so a rerun after an interruption finishes the job.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = [
    ("account_name_trgm", "portfolio_account", "name"),
    ("contact_name_trgm", "portfolio_contact", "name"),
    ("triage_issue_title_trgm", "triage_triageissue", "title"),
    ("collab_project_path_trgm", "engagement_collaborationproject", "path"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workspace", "0001_initial"),
        ("portfolio", "0014_api_token"),
        ("triage", "0002_beat_schedules"),
        ("engagement", "0006_outbound_email"),
    ]

    operations = [
        TrigramExtension(),
        *(
            migrations.RunSQL(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} "
                f"USING gin (UPPER({column}) gin_trgm_ops)",
                f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
            )
            for name, table, column in INDEXES
        ),
    ]
