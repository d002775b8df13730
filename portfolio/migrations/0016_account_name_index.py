# The order of Django admin's account change list (name, then id), so its first page is
# read from an index instead of sorting every account (issue 12, point 6). Built
# CONCURRENTLY: at a million accounts the build takes seconds and must not block syncs.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("portfolio", "0015_account_priority_decision"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="account",
            index=models.Index(fields=["name", "id"], name="account_name_id"),
        ),
    ]
