"""Reads of the usage app. Every function runs a fixed number of queries whatever the size
of the book or the length of the history.

- `usage_measures_for_accounts(accounts)`: what the health engine reads (3 queries);
- `account_usage_panel(account)`: the account page's trends, last 12 months (3 queries).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connection

from portfolio.models import Account
from prioritization.models import RuleSet
from triage.health import UsageMeasures, UsageThresholds
from usage.models import AccountUsage, Metric, MetricKind, Release

TREND_MONTHS = 12

# Months of data older than this before today say nothing about the account now.
STALE_MONTHS = 3

BUILTIN = (
    "active_users",
    "licensed_seats",
    "version",
    "stages_in_use",
    "tickets_opened",
    "new_features_used",
)

# Each account's months from its rows: a monthly row when given (at most one per metric
# and month: the key), else the days folded by the metric's aggregation. The monthly rows
# are taken as they are, with no grouping (the common case costs no aggregate); the days
# are grouped only where no monthly row covers their month. "The last day's" value and text
# are the greatest of arrays led by the day: no ORDER BY inside an aggregate (PostgreSQL 15
# sorts each group for one). `{where}` is applied to both parts.
MONTHLY_SQL = """
SELECT v.account_id, m.name, v.period AS month, v.value, v.text
FROM usage_value v JOIN usage_metric m ON m.id = v.metric_id
WHERE {where} AND v.grain = 'm'
UNION ALL
SELECT v.account_id, m.name, date_trunc('month', v.period::timestamp)::date AS month,
    CASE WHEN m.aggregation = 'sum' THEN sum(v.value)
         WHEN m.aggregation = 'avg' THEN avg(v.value)
         WHEN m.aggregation = 'max' THEN max(v.value)
         ELSE (max(ARRAY[(v.period - DATE '2000-01-01')::double precision, v.value]))[2]
    END AS value,
    (max(ARRAY[v.period::text, v.text] COLLATE "C"))[2] AS text
FROM usage_value v JOIN usage_metric m ON m.id = v.metric_id
WHERE {where} AND v.grain = 'd' AND NOT EXISTS (
    SELECT 1 FROM usage_value o
    WHERE o.account_id = v.account_id AND o.metric_id = v.metric_id AND o.grain = 'm'
      AND o.period = date_trunc('month', v.period::timestamp)::date
)
GROUP BY v.account_id, m.id, date_trunc('month', v.period::timestamp)
"""


def month_start(day: dt.date, back: int = 0) -> dt.date:
    """The first day of `day`'s month, `back` months earlier."""
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def released_majors(*, today: dt.date) -> tuple[int, ...]:
    """The major versions released by `today` (the admin's releases table; 1 query)."""
    majors = {
        r.major
        for r in Release.objects.filter(released_on__lte=today).only("version")
        if r.major is not None
    }
    return tuple(sorted(majors))


def thresholds_by_ruleset() -> dict[tuple[str, str], UsageThresholds]:
    return {(rs.region_id, rs.segment): rs.usage_thresholds() for rs in RuleSet.objects.all()}


def usage_measures_for_accounts(
    accounts: Sequence[Account], *, today: dt.date
) -> dict[int, tuple[UsageMeasures, UsageThresholds]]:
    """Per account with recent usage: its measures and its rule set's thresholds (the
    defaults when no rule set covers its region and segment). 3 queries.

    Usage older than `STALE_MONTHS` months says nothing about the account now: left out.
    Licensed seats fall back to Salesforce's `Licensed_Seats__c` when usage has none."""
    ids = [a.pk for a in accounts]
    rows = {
        row.account_id: row
        for row in AccountUsage.objects.filter(
            account_id__in=ids, month__gte=month_start(today, STALE_MONTHS)
        )
    }
    if not rows:
        return {}
    thresholds = thresholds_by_ruleset()
    majors = released_majors(today=today)
    default = UsageThresholds()
    out = {}
    for account in accounts:
        row = rows.get(account.pk)
        if row is None:
            continue
        seats, source = row.licensed_seats, "usage"
        if seats is None and account.licensed_seats:
            seats, source = account.licensed_seats, "Salesforce"
        previous_seats = row.previous_licensed_seats or seats
        measures = UsageMeasures(
            month=row.month,
            active_users=row.active_users,
            licensed_seats=seats,
            seats_source=source,
            previous_month=row.previous_month,
            previous_active_users=row.previous_active_users,
            previous_licensed_seats=previous_seats if row.previous_month else None,
            version=row.version or None,
            released_majors=majors,
            tickets_opened=row.tickets_opened,
            stages_in_use=row.stages_in_use,
            new_features_used=row.new_features_used,
        )
        out[account.pk] = (
            measures,
            thresholds.get((account.region_id, account.segment), default),
        )
    return out


def stages_adopted_by_account(account_ids: Sequence[int], *, today: dt.date) -> dict[int, int]:
    """Stages in use in each account's latest (recent) month, for the priority facts."""
    rows = AccountUsage.objects.filter(
        account_id__in=list(account_ids),
        month__gte=month_start(today, STALE_MONTHS),
        stages_in_use__isnull=False,
    ).values_list("account_id", "stages_in_use")
    return {account_id: stages for account_id, stages in rows if stages is not None}


# --- The account page ------------------------------------------------------------------


@dataclass
class Trend:
    metric: Metric
    points: list[tuple[dt.date, float | None]] = field(default_factory=list)
    texts: list[tuple[dt.date, str]] = field(default_factory=list)

    @property
    def latest(self) -> float | None:
        known = [v for _, v in self.points if v is not None]
        return known[-1] if known else None


def _current_summary(
    account: Account,
    values: dict[str, dict[dt.date, tuple[float | None, str | None]]],
    *,
    today: dt.date,
) -> AccountUsage | None:
    """The account's summary row, unless it is stale: its month aged out (older than
    `STALE_MONTHS`), or it is not the latest month of the built-in measures the trends
    read (its rows removed, or a later month stored without a refresh). The daily
    `usage_summaries_reconcile` refreshes such rows; until then the page shows none."""
    summary = AccountUsage.objects.filter(
        account=account, month__gte=month_start(today, STALE_MONTHS)
    ).first()
    latest = max((m for name in BUILTIN for m in values.get(name, {})), default=None)
    return summary if summary is not None and summary.month == latest else None


def account_trends(account: Account, *, today: dt.date, months: int = TREND_MONTHS) -> dict:
    """Each measure of the account over the last `months` months (month by month, days
    folded by the metric's aggregation), adoption as a share of seats. 3 queries."""
    start = month_start(today, months - 1)
    axis = [month_start(today, back) for back in range(months - 1, -1, -1)]
    metrics = {m.name: m for m in Metric.objects.all()}
    sql = MONTHLY_SQL.format(where="v.account_id = %(account)s AND v.period >= %(since)s")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"account": account.pk, "since": start})
        rows = cursor.fetchall()
    values: dict[str, dict[dt.date, tuple[float | None, str | None]]] = defaultdict(dict)
    for _account_id, name, month, value, text in rows:
        values[name][month] = (value, text)
    trends = []
    for name, metric in metrics.items():
        if name not in values:
            continue
        series = values[name]
        trend = Trend(metric=metric)
        trend.points = [(m, series.get(m, (None, None))[0]) for m in axis]
        if metric.kind in (MetricKind.VERSION, MetricKind.STAGES):
            trend.texts = [(m, series[m][1] or "") for m in axis if m in series]
        trends.append(trend)
    adoption = []
    seats_fallback = account.licensed_seats
    for m in axis:
        active = values.get("active_users", {}).get(m, (None, None))[0]
        seats = values.get("licensed_seats", {}).get(m, (None, None))[0] or seats_fallback
        adoption.append((m, 100 * active / seats if active is not None and seats else None))
    summary = _current_summary(account, values, today=today)
    return {
        "axis": axis,
        "trends": trends,
        "adoption": adoption,
        "summary": summary,
        "has_usage": bool(rows),
    }
