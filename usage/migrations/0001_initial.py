"""The usage app's tables. `usage_value` is declared partitioned by month here (Django
cannot): RANGE on `period`, one partition a month created by the import when a month first
arrives (`usage.services.usage_partitions_ensure`). Its key (account, metric, grain,
period) holds the partition key, as PostgreSQL requires of a partitioned table's unique
key, and makes every way in idempotent.

No foreign keys on `usage_value`: a foreign key check takes a KEY SHARE lock on the
referenced account row for every usage row inserted, which at a million rows a run is most
of the load's cost and contends with the Salesforce sync's updates of the same accounts.
The import only ever stores rows whose account and metric it joined; the rows of a deleted
account are never read (every read joins the account) and `usage_orphans_purge` removes
them."""

import django.db.models.deletion
from django.db import migrations, models

BUILTIN_METRICS = (
    # name, label, unit, kind, aggregation of days into a month
    ("active_users", "Active users", "users", "count", "max"),
    ("licensed_seats", "Licensed seats", "seats", "count", "max"),
    ("version", "Version", "", "version", "last"),
    ("stages_in_use", "Stages in use", "stages", "stages", "max"),
    ("tickets_opened", "Support tickets opened", "tickets", "count", "sum"),
    ("new_features_used", "New features used", "features", "count", "max"),
    ("ci_pipelines", "CI pipelines", "pipelines", "count", "sum"),
)

CREATE_USAGE_VALUE = """
CREATE TABLE usage_value (
    account_id bigint NOT NULL,
    metric_id smallint NOT NULL,
    grain char(1) NOT NULL CHECK (grain IN ('m', 'd')),
    period date NOT NULL,
    value double precision,
    text text,
    PRIMARY KEY (account_id, metric_id, grain, period)
) PARTITION BY RANGE (period)
"""


def seed_metrics(apps, schema_editor):
    Metric = apps.get_model("usage", "Metric")
    for name, label, unit, kind, aggregation in BUILTIN_METRICS:
        Metric.objects.update_or_create(
            name=name,
            defaults={
                "label": label,
                "unit": unit,
                "kind": kind,
                "aggregation": aggregation,
                "builtin": True,
            },
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("portfolio", "0015_account_priority_decision"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageValue",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "account",
                        "metric",
                        "grain",
                        "period",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("grain", models.CharField(choices=[("m", "Month"), ("d", "Day")], max_length=1)),
                ("period", models.DateField()),
                ("value", models.FloatField(null=True)),
                ("text", models.TextField(null=True)),
            ],
            options={
                "db_table": "usage_value",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="AccountUsage",
            fields=[
                (
                    "account",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="usage_summary",
                        serialize=False,
                        to="portfolio.account",
                    ),
                ),
                ("month", models.DateField()),
                ("active_users", models.PositiveIntegerField(null=True)),
                ("licensed_seats", models.PositiveIntegerField(null=True)),
                ("previous_month", models.DateField(null=True)),
                ("previous_active_users", models.PositiveIntegerField(null=True)),
                ("previous_licensed_seats", models.PositiveIntegerField(null=True)),
                ("version", models.CharField(blank=True, default="", max_length=20)),
                ("tickets_opened", models.PositiveIntegerField(null=True)),
                ("stages_in_use", models.PositiveSmallIntegerField(null=True)),
                ("new_features_used", models.PositiveIntegerField(null=True)),
                (
                    "adoption",
                    models.FloatField(help_text="active users / licensed seats", null=True),
                ),
                ("previous_adoption", models.FloatField(null=True)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "verbose_name_plural": "account usage",
            },
        ),
        migrations.CreateModel(
            name="Metric",
            fields=[
                ("id", models.SmallAutoField(primary_key=True, serialize=False)),
                ("name", models.SlugField(help_text="As sent in rows: ci_pipelines", unique=True)),
                ("label", models.CharField(max_length=100)),
                (
                    "unit",
                    models.CharField(
                        blank=True, default="", help_text="users, tickets…", max_length=30
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("count", "Whole number >= 0"),
                            ("number", "Number >= 0"),
                            ("version", "Version (major.minor)"),
                            ("stages", "Stages (a list of names, or a count)"),
                        ],
                        default="count",
                        max_length=10,
                    ),
                ),
                (
                    "aggregation",
                    models.CharField(
                        choices=[
                            ("sum", "Sum of the days"),
                            ("max", "Highest day"),
                            ("avg", "Average of the days"),
                            ("last", "Last day"),
                        ],
                        default="sum",
                        max_length=10,
                    ),
                ),
                ("builtin", models.BooleanField(default=False, editable=False)),
                ("description", models.TextField(blank=True, default="")),
            ],
            options={
                "ordering": ["-builtin", "name"],
            },
        ),
        migrations.CreateModel(
            name="Release",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "version",
                    models.CharField(
                        help_text="major.minor, e.g. 18.0", max_length=20, unique=True
                    ),
                ),
                ("released_on", models.DateField()),
            ],
            options={
                "ordering": ["-released_on"],
            },
        ),
        migrations.RunSQL(CREATE_USAGE_VALUE, reverse_sql="DROP TABLE usage_value"),
        migrations.RunPython(seed_metrics, migrations.RunPython.noop),
    ]
