"""The statement-level history trigger of Account joins its OLD and NEW transition tables
on id to find the rows whose ARR, TAM, health or priority changed. PostgreSQL has no
statistics for transition tables and estimates one row each, so it plans a nested loop:
rows x rows comparisons, 18.5 s for an UPDATE of 8,356 accounts (measured, auto_explain),
quadratic in the size of every bulk statement (sync batches, write-back chunks, priority
updates). With nested loops disabled inside the trigger function only (a function-level
setting, restored when it returns), the join is hashed: linear.

pgtrigger re-creates this function only when the trigger's definition changes; the test
tests/integration/test_salesforce_history.py checks that the setting is still there.
"""

from django.db import migrations

FUNCTION = "pgtrigger_update_update_71cb1()"


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0008_salesforce_writeback")]

    operations = [
        migrations.RunSQL(
            f"ALTER FUNCTION {FUNCTION} SET enable_nestloop = off",
            reverse_sql=f"ALTER FUNCTION {FUNCTION} RESET enable_nestloop",
        )
    ]
