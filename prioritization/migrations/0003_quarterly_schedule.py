"""Seed the quarterly re-evaluation in django-celery-beat: 06:00 on day 1 of each fiscal
quarter. The months follow settings.FISCAL_YEAR_START_MONTH when the migration runs
(default 2: February, May, August, November); admins can edit the schedule in admin."""

from django.conf import settings
from django.db import migrations

TASK = "prioritization.tasks.reevaluate_priorities_quarterly"
NAME = "Quarterly priority re-evaluation"


def quarter_months(start: int) -> str:
    return ",".join(str((start - 1 + 3 * i) % 12 + 1) for i in range(4))


def seed(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="6",
        day_of_week="*",
        day_of_month="1",
        month_of_year=quarter_months(settings.FISCAL_YEAR_START_MONTH),
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(name=NAME, defaults={"task": TASK, "crontab": crontab})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("prioritization", "0002_seed_rulesets"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
