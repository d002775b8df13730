"""Reads the pages compose: the dashboard's headline figures and renewals, the team view's
workload per TAM, the account page's account with its timeline and open opportunities."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from engagement.cadence import Cadence, cadence_days_sql, held_outcomes_sql, with_cadence
from portfolio.models import Account, Activity, ActivityKind, Health, Opportunity, Priority
from portfolio.selectors import (
    RENEWAL_WINDOW_DAYS,
    accounts_for_user,
    at_risk_q,
    tams_by_name,
    tams_for_user,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def accounts_with_table_columns(
    accounts: QuerySet[Account],
) -> QuerySet[WithAnnotations[Account, Cadence]]:
    """The accounts table's columns: TAM, last cadence call, overdue flag, adoption
    (usage summary, one join)."""
    return with_cadence(accounts.select_related("tam", "usage_summary"))


def dashboard_figures(
    accounts: QuerySet[Account], *, today: dt.date, renewal_months: int = 0
) -> dict:
    """Headline figures of a book in one query: ARR, counts by priority and health,
    renewals in the next 90 days, overdue cadence calls; with `renewal_months`, also the
    count and ARR renewing in each of the next calendar months (`renewals_by_month`
    reads them from the figures instead of a query of its own)."""
    aggregates: dict = {
        "count": Count("pk"),
        "book_arr": Coalesce(Sum("arr"), Value(Decimal(0)), output_field=DecimalField()),
        "renewals_90": Count(
            "pk",
            filter=Q(
                renewal_date__gte=today,
                renewal_date__lte=today + dt.timedelta(days=RENEWAL_WINDOW_DAYS),
            ),
        ),
        "renewals_90_arr": Coalesce(
            Sum(
                "arr",
                filter=Q(
                    renewal_date__gte=today,
                    renewal_date__lte=today + dt.timedelta(days=RENEWAL_WINDOW_DAYS),
                ),
            ),
            Value(Decimal(0)),
            output_field=DecimalField(),
        ),
        "overdue": Count("pk", filter=Q(cadence_overdue=True)),
        "at_risk": Count("pk", filter=at_risk_q()),
        "unprioritised": Count("pk", filter=Q(priority__isnull=True)),
        "unscored": Count("pk", filter=Q(health="")),
    }
    for level in Priority:
        aggregates[f"p{level.value}"] = Count("pk", filter=Q(priority=level.value))
    for colour in Health:
        aggregates[colour.value] = Count("pk", filter=Q(health=colour.value))
    aggregates.update(_renewal_aggregates(today, renewal_months))
    return with_cadence(accounts).order_by().aggregate(**aggregates)


def _renewal_months(today: dt.date, months: int) -> list[tuple[dt.date, dt.date]]:
    """The next `months` calendar months from this one, as [first day, next first day)."""
    start = today.replace(day=1)
    return [(_add_months(start, i), _add_months(start, i + 1)) for i in range(months)]


def _renewal_aggregates(today: dt.date, months: int) -> dict:
    """Count and ARR renewing in each of the next `months` months, as FILTERed aggregates."""
    aggregates: dict = {}
    for i, (start, end) in enumerate(_renewal_months(today, months)):
        in_month = Q(renewal_date__gte=start, renewal_date__lt=end)
        aggregates[f"renewals_month_{i}"] = Count("pk", filter=in_month)
        aggregates[f"renewals_month_{i}_arr"] = Sum("arr", filter=in_month)
    return aggregates


def renewals_by_month(
    accounts: QuerySet[Account], *, today: dt.date, months: int = 12, figures: dict | None = None
) -> list[dict]:
    """ARR and count renewing in each of the next `months` calendar months: one query, or
    none from `figures` of `dashboard_figures(..., renewal_months=months)`."""
    if figures is None or f"renewals_month_{months - 1}" not in figures:
        figures = accounts.order_by().aggregate(**_renewal_aggregates(today, months))
    return [
        {
            "month": start,
            "count": figures[f"renewals_month_{i}"],
            "arr": figures[f"renewals_month_{i}_arr"] or Decimal(0),
        }
        for i, (start, _end) in enumerate(_renewal_months(today, months))
    ]


def team_workload(user: User, tams: list[User] | None = None) -> list[dict]:
    """Per TAM: accounts, ARR, P1 count, at-risk and overdue counts, for `tams` (default:
    every TAM the user sees, `tams_by_name`). Pass a page of them: the aggregation reads
    their accounts only, so it costs what the page shows whatever the company's size (an
    admin's 5,000 TAMs aggregated at once took seconds at 1M accounts).

    One GROUP BY over those TAMs' accounts, each account's last cadence call one probe of
    the activities index (account, kind, -occurred_at)."""
    tams = tams_by_name(user) if tams is None else tams
    ids = [t.pk for t in tams]
    account, activity = Account._meta.db_table, Activity._meta.db_table
    last_call = f"""LEFT JOIN LATERAL (
            SELECT max(a.occurred_at) AS at FROM {activity} a
            WHERE a.account_id = b.id AND a.kind = %(kind)s AND {held_outcomes_sql("a.outcome")}
        ) lc ON true"""  # nosec B608 # table names from the models, values as parameters
    sql = f"""
        WITH book AS (
            SELECT id, tam_id, arr, priority, health, region_id, segment,
                   onboarding_started, onboarding_completed
            FROM {account} WHERE tam_id = ANY(%(ids)s)
        ), rows AS (
            SELECT b.tam_id, b.arr, b.priority, b.health, lc.at AS last_call,
                   {cadence_days_sql("b")} AS cadence_days
            FROM book b
            {last_call}
        )
        SELECT tam_id, count(*), coalesce(sum(arr), 0),
               count(*) FILTER (WHERE priority = 1),
               count(*) FILTER (WHERE health IN ('amber', 'red')),
               count(*) FILTER (WHERE cadence_days IS NOT NULL AND (
                   last_call IS NULL OR last_call < %(now)s - cadence_days * interval '1 day'))
        FROM rows GROUP BY tam_id
    """  # nosec B608 # identifiers come from code, values go as query parameters
    params: dict[str, list[int] | str | dt.datetime] = {
        "ids": ids,
        "kind": ActivityKind.CADENCE_CALL.value,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    keys = ("count", "book_arr", "p1", "at_risk", "overdue")
    by_tam = {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}
    empty = {"count": 0, "book_arr": Decimal(0), "p1": 0, "at_risk": 0, "overdue": 0}
    return [{"tam": tam, **by_tam.get(tam.pk, empty)} for tam in tams]


def account_for_page(user: User, salesforce_id: str) -> Account:
    """The account with its related rows for the account page; 404 when out of scope.
    Annotated with its cadence (`with_cadence`) for the summary header, in the same query."""
    return get_object_or_404(
        with_cadence(
            accounts_for_user(user).select_related("region", "tam", "owner", "parent", "ruleset")
        ),
        salesforce_id=salesforce_id,
    )


def account_timeline(account: Account, *, limit: int = 25) -> list[Activity]:
    return list(account.activities.select_related("user").order_by("-occurred_at")[:limit])


def account_open_opportunities(account: Account, *, limit: int = 20) -> list[Opportunity]:
    return list(account.opportunities.filter(is_closed=False).order_by("close_date")[:limit])


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    return dt.date(day.year + month_index // 12, month_index % 12 + 1, 1)


def team_book_totals(user: User) -> dict:
    """Accounts and ARR of the books of every TAM the user sees, together (one aggregate):
    the team view's header when its TAMs span more than one page."""
    return Account.objects.filter(tam__in=tams_for_user(user)).aggregate(
        count=Count("pk"),
        book_arr=Coalesce(Sum("arr"), Value(Decimal(0)), output_field=DecimalField()),
    )
