from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_syncrun_details"),
    ]

    operations = [
        migrations.AddField(
            model_name="synccursor",
            name="deferred_ddl",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
