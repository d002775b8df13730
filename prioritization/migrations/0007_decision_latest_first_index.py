# The order of Django admin's decision change list (newest first, over every decision),
# so its first page is read from an index instead of sorting gigabytes of decisions
# (issue 12, point 6). Built CONCURRENTLY so a re-evaluation is not blocked meanwhile.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("prioritization", "0006_ruleset_usage_thresholds"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="prioritydecision",
            index=models.Index(fields=["-decided_at", "-id"], name="decision_latest_first"),
        ),
    ]
