# Health assessments newest first over a whole company: the Customer ER agenda's colour
# changes since the last call took 0.9 s at 1M accounts sorting every assessment (issue 12,
# point 1). Built CONCURRENTLY so writes go on meanwhile.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("triage", "0003_reason_max_length"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="healthassessment",
            index=models.Index(fields=["-created_at", "-id"], name="assessment_latest_first"),
        ),
    ]
