"""Seed the Salesforce schedules (every 15 minutes); admins edit them in Django admin."""

from django.db import migrations

SCHEDULES = [
    ("Salesforce sync", "portfolio.sync_salesforce"),
    ("Salesforce write-back sweep", "portfolio.salesforce_writeback_sweep"),
]


def seed(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    for name, task in SCHEDULES:
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every_15})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, _ in SCHEDULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0003_account_history_and_salesforce_state"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
