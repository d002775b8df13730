"""Seed the triage schedules (daily health run, GitLab sync); admins edit them in admin."""

from django.db import migrations

DAILY = "Health scores: daily automatic run"
SYNC = "GitLab triage board sync"


def seed(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="5", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )
    every_15, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=DAILY, defaults={"task": "triage.health_assess_all", "crontab": daily}
    )
    PeriodicTask.objects.get_or_create(
        name=SYNC, defaults={"task": "triage.sync_gitlab", "interval": every_15}
    )


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[DAILY, SYNC]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("triage", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
