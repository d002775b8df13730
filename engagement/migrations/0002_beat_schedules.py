"""Seed the engagement schedules (customer issues read from GitLab, paid projects moved to
account management); admins edit them in admin."""

from django.db import migrations

ISSUES = "Engagement: customer open issues from GitLab"
TRANSFER = "Engagement: move paid customers' projects to account management"


def seed(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name=ISSUES, defaults={"task": "engagement.customer_issues_sync_all", "interval": hourly}
    )
    PeriodicTask.objects.get_or_create(
        name=TRANSFER,
        defaults={"task": "engagement.collaboration_projects_transfer_paid", "interval": hourly},
    )


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[ISSUES, TRANSFER]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("engagement", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
