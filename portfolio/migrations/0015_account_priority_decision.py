"""Account.priority_decision: a pointer to the account's current (latest) priority
decision, so the quarterly review reads it by primary key rather than `DISTINCT ON` over
the whole decision history (which grows every quarter). Filled here from that history,
once; `prioritization.services.priorities_reevaluate` keeps it from then on. Only an
untracked column changes, so the history trigger writes no events."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
UPDATE portfolio_account a SET priority_decision_id = d.id
FROM (
    SELECT DISTINCT ON (account_id) account_id, id
    FROM prioritization_prioritydecision
    ORDER BY account_id, decided_at DESC, id DESC
) d
WHERE a.id = d.account_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0014_api_token"),
        ("prioritization", "0005_review_marker"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="priority_decision",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="prioritization.prioritydecision",
            ),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
