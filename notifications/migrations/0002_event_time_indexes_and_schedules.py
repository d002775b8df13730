"""BRIN indexes on the time columns the producer reads from its cursor (append-only
tables, so a BRIN index is tiny and cheap to keep up), and the beat schedules:
produce every 5 minutes, post to chat every minute, the digest at 07:00."""

from django.conf import settings
from django.db import migrations

INDEXES = [
    ("portfolio_accountevent", "pgh_created_at"),
    ("prioritization_prioritydecision", "decided_at"),
    ("triage_healthassessment", "created_at"),
    ("triage_triageevent", "created_at"),
]
SCHEDULES = [
    ("Notifications: produce", "notifications.produce", 5),
    ("Notifications: post to team chat", "notifications.webhooks_deliver", 1),
]
DIGEST = ("Notifications: daily e-mail digest", "notifications.digests_daily")


def index_name(table: str, column: str) -> str:
    return f"notif_brin_{table.split('_', 1)[1][:20]}_{column[:12]}"


def seed(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in SCHEDULES:
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="7",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=DIGEST[0], defaults={"task": DIGEST[1], "crontab": crontab}
    )


def unseed(apps, schema_editor):
    names = [name for name, _, _ in SCHEDULES] + [DIGEST[0]]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("portfolio", "0014_api_token"),
        ("prioritization", "0004_engagement_checks"),
        ("triage", "0002_beat_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        *(
            migrations.RunSQL(
                f'CREATE INDEX IF NOT EXISTS {index_name(t, c)} ON "{t}" USING brin ("{c}")',
                f"DROP INDEX IF EXISTS {index_name(t, c)}",
            )
            for t, c in INDEXES
        ),
        migrations.RunPython(seed, unseed),
    ]
