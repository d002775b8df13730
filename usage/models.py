"""Product usage per account and period (issue 16): what the handbook's health criteria
measure ("Low user adoption", "major releases behind", "more than 15 tickets a month",
stages adopted, new features), read from data rather than typed by the TAM.

`UsageValue` is a PostgreSQL table partitioned by month (created by migration 0001, not by
Django: `managed = False`), keyed by (account, metric, grain, period) so that every way in
is idempotent; a partitioned table's key must hold the partition key, and it does
(`period`). `AccountUsage` is one row per account with the latest month's measures, kept
by the import (`usage.services.usage_summary_refresh`) so that the health run, the
dashboard and the account page read O(accounts), not O(history)."""

from __future__ import annotations

from django.db import models

from portfolio.models import Account


class MetricKind(models.TextChoices):
    COUNT = "count", "Whole number >= 0"
    NUMBER = "number", "Number >= 0"
    VERSION = "version", "Version (major.minor)"
    STAGES = "stages", "Stages (a list of names, or a count)"


class Aggregation(models.TextChoices):
    """How daily rows make a month when no monthly row is given."""

    SUM = "sum", "Sum of the days"
    MAX = "max", "Highest day"
    AVG = "avg", "Average of the days"
    LAST = "last", "Last day"


class Grain(models.TextChoices):
    MONTH = "m", "Month"
    DAY = "d", "Day"


class Metric(models.Model):
    """A named measure. The built-in ones (data migration) feed the health signals; an
    admin may add more (shown as trends on the account page)."""

    # A small key: every usage row carries it.
    id = models.SmallAutoField(primary_key=True)
    name = models.SlugField(max_length=50, unique=True, help_text="As sent in rows: ci_pipelines")
    label = models.CharField(max_length=100)
    unit = models.CharField(max_length=30, blank=True, default="", help_text="users, tickets…")
    kind = models.CharField(max_length=10, choices=MetricKind.choices, default=MetricKind.COUNT)
    aggregation = models.CharField(
        max_length=10, choices=Aggregation.choices, default=Aggregation.SUM
    )
    builtin = models.BooleanField(default=False, editable=False)
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-builtin", "name"]

    def __str__(self) -> str:
        return self.name


class Release(models.Model):
    """A product release the admin keeps, for "major releases behind": an account on
    16.x with 17.0 and 18.0 released is two major releases behind."""

    version = models.CharField(max_length=20, unique=True, help_text="major.minor, e.g. 18.0")
    released_on = models.DateField()

    class Meta:
        ordering = ["-released_on"]

    def __str__(self) -> str:
        return self.version

    @property
    def major(self) -> int | None:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else None


class UsageValue(models.Model):
    """One measure of one account for one period (a month, or a day). Partitioned by
    month; `value` holds the number (for stages: the count), `text` the version or the
    stage names."""

    pk = models.CompositePrimaryKey("account", "metric", "grain", "period")
    account = models.ForeignKey(Account, on_delete=models.DO_NOTHING, related_name="+")
    metric = models.ForeignKey(Metric, on_delete=models.DO_NOTHING, related_name="+")
    grain = models.CharField(max_length=1, choices=Grain.choices)
    period = models.DateField()
    value = models.FloatField(null=True)
    text = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "usage_value"

    def __str__(self) -> str:
        return f"{self.account_id} {self.metric_id} {self.period}"


class AccountUsage(models.Model):
    """The latest month of usage of an account and the month before (for the change)."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="usage_summary"
    )
    month = models.DateField()
    active_users = models.PositiveIntegerField(null=True)
    licensed_seats = models.PositiveIntegerField(null=True)
    previous_month = models.DateField(null=True)
    previous_active_users = models.PositiveIntegerField(null=True)
    previous_licensed_seats = models.PositiveIntegerField(null=True)
    version = models.CharField(max_length=20, blank=True, default="")
    tickets_opened = models.PositiveIntegerField(null=True)
    stages_in_use = models.PositiveSmallIntegerField(null=True)
    new_features_used = models.PositiveIntegerField(null=True)
    adoption = models.FloatField(null=True, help_text="active users / licensed seats")
    previous_adoption = models.FloatField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "account usage"

    def __str__(self) -> str:
        return f"Usage of {self.account_id} in {self.month:%Y-%m}"

    @property
    def adoption_change(self) -> float | None:
        """Change in adoption since the month before, in percentage points."""
        if self.adoption is None or self.previous_adoption is None:
            return None
        return round(100 * (self.adoption - self.previous_adoption), 1)
