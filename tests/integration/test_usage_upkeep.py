"""Issue 16's upkeep: the daily schedules (the rows of deleted accounts purged, stale
summaries refreshed), summary rows that no longer say what the rows say (left out by the
account page, refreshed or removed), and the dashboard's adoption change styled by a
stylesheet the dashboard loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests import factories
from usage import services, tasks
from usage.models import AccountUsage, UsageValue
from usage.selectors import account_trends, month_start

pytestmark = pytest.mark.django_db


def _import(account, months_back: tuple[int, ...], active: tuple[int, ...] = ()) -> None:
    today = timezone.localdate()
    rows = []
    for i, back in enumerate(months_back):
        period = f"{month_start(today, back):%Y-%m}"
        rows += [
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "active_users",
                "value": active[i] if active else 400 + i,
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "licensed_seats",
                "value": 1000,
            },
        ]
    services.usage_import(
        rows=(services.staged_from_record(i, r) for i, r in enumerate(rows)),
        trigger="test",
        assess=False,
    )


@pytest.mark.parametrize(
    ("task", "hour"),
    [("usage.orphans_purge", "4"), ("usage.summaries_reconcile", "5")],
)
def test_the_daily_schedules_are_seeded_before_the_health_run(task, hour):
    entry = PeriodicTask.objects.select_related("crontab").get(task=task)
    assert entry.enabled and entry.crontab is not None
    crontab = entry.crontab
    assert (crontab.hour, crontab.day_of_month, crontab.month_of_year) == (hour, "*", "*")
    assert crontab.day_of_week == "*"  # daily; the health run is at 05:30 UTC


def test_the_purge_task_deletes_the_rows_of_deleted_accounts_only():
    kept, gone = factories.AccountFactory(), factories.AccountFactory()
    _import(kept, (1, 0))
    _import(gone, (1, 0))
    gone_id = gone.pk
    gone.delete()  # its summary row goes with it (a foreign key); its usage rows stay
    assert UsageValue.objects.filter(account_id=gone_id).count() == 4
    assert tasks.usage_orphans_purge() == "Usage rows of deleted accounts: 4 deleted"
    assert not UsageValue.objects.filter(account_id=gone_id).exists()
    assert UsageValue.objects.filter(account_id=kept.pk).count() == 4


def _delete_month(account, back: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM usage_value WHERE account_id = %s AND period = %s",
            [account.pk, month_start(timezone.localdate(), back)],
        )


def test_a_summary_whose_month_lost_its_rows_is_left_out_then_refreshed():
    account = factories.AccountFactory(licensed_seats=1000)
    _import(account, (2, 1, 0), active=(500, 450, 300))
    today = timezone.localdate()
    assert account_trends(account, today=today)["summary"].month == month_start(today)
    _delete_month(account, 0)
    # The page does not show the summary of a month whose rows are gone ...
    assert account_trends(account, today=today)["summary"] is None
    # ... until the daily refresh makes the month before the latest one.
    assert tasks.usage_summaries_reconcile() == "Usage summaries: 1 stale, refreshed"
    summary = account_trends(account, today=today)["summary"]
    assert (summary.month, summary.active_users) == (month_start(today, 1), 450)
    assert summary.previous_active_users == 500
    assert services.usage_summaries_reconcile() == 0


def test_a_summary_behind_a_later_month_is_left_out_then_refreshed():
    account = factories.AccountFactory()
    _import(account, (2, 1))
    today = timezone.localdate()
    # A later month stored without a summary refresh (as by hand, or a failed import).
    services.usage_partitions_ensure([month_start(today)])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO usage_value SELECT account_id, metric_id, grain, %s, value, text "
            "FROM usage_value WHERE account_id = %s AND period = %s",
            [month_start(today), account.pk, month_start(today, 1)],
        )
    assert account_trends(account, today=today)["summary"] is None
    assert services.usage_summaries_reconcile() == 1
    assert account_trends(account, today=today)["summary"].month == month_start(today)


def test_a_summary_with_no_recent_usage_left_is_removed():
    account = factories.AccountFactory()
    _import(account, (1, 0))
    today = timezone.localdate()
    aged = AccountUsage.objects.get(account=account)
    # As if written long ago: its month has aged out.
    AccountUsage.objects.filter(pk=aged.pk).update(month=month_start(today, 7))
    assert account_trends(account, today=today)["summary"] is None
    _delete_month(account, 0)
    _delete_month(account, 1)
    assert services.usage_summaries_reconcile() == 1
    assert not AccountUsage.objects.filter(account=account).exists()


def test_an_import_of_old_months_only_leaves_no_summary():
    account = factories.AccountFactory()
    _import(account, (1, 0))
    assert AccountUsage.objects.filter(account=account).exists()
    _delete_month(account, 0)
    _delete_month(account, 1)
    _import(account, (9, 8))  # history only: nothing recent to summarise
    assert not AccountUsage.objects.filter(account=account).exists()


def test_the_dashboard_loads_the_rule_that_colours_an_adoption_drop(client, tam):
    account = factories.AccountFactory(tam=tam, licensed_seats=1000)
    _import(account, (1, 0), active=(600, 300))
    client.force_login(tam)
    html = client.get("/").content.decode()
    assert 'class="adoption-drop"' in html
    sheets = re.findall(r'<link rel="stylesheet" href="/static/([^"]+)"', html)
    css = "".join(Path(finders.find(path)).read_text(encoding="utf-8") for path in sheets)
    assert re.search(r"\.adoption-drop\s*\{[^}]*color", css), sheets
