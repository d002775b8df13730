"""Seed the usage app's daily schedules; admins edit them in Django admin: the usage rows
of deleted accounts purged (no foreign key does it, see 0001), and the stale summary rows
refreshed, both before the daily health run (05:30 UTC) reads the summaries."""

from django.db import migrations

SCHEDULES = [
    ("Product usage: purge the rows of deleted accounts", "usage.orphans_purge", "45", "4"),
    ("Product usage: refresh stale summaries", "usage.summaries_reconcile", "5", "5"),
]


def seed(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour in SCHEDULES:
        daily, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": daily})


def unseed(apps, schema_editor):
    names = [name for name, *_ in SCHEDULES]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
