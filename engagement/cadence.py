"""The cadence each account is held to, in SQL: its expected days between cadence calls
(the rule set's, else the handbook's default, sooner while onboarding) and whether a call
was held within them. The one definition, read by the account page's expectations, the
dashboard's overdue count, the team view, the inbox and the notifications."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypedDict

from django.db.models import BooleanField, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from engagement.rules import DEFAULT_CADENCE_DAYS, HELD_OUTCOMES
from portfolio.models import Account, Activity, ActivityKind
from prioritization.models import RuleSet

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class Cadence(TypedDict):
    """What `with_cadence` annotates on each account (for mypy: `WithAnnotations`)."""

    cadence_days: int | None
    last_cadence_at: dt.datetime | None
    cadence_overdue: bool


def cadence_days_sql(table: str = '"portfolio_account"') -> str:
    """SQL for an account's expected cadence in days (NULL for P3/P4): its rule set's
    `p1/p2_cadence_days`, else (none, or 0) the handbook default (`engagement.rules`), or
    the rule set's `onboarding_cadence_days` while onboarding is not complete (started, no
    completion date) when that is sooner (`engagement.rules.expected_cadence_days`), as
    the account page's expectations read it. `table`: the account table's name or alias
    in the query it goes into (it needs `priority`, `region_id`, `segment`,
    `onboarding_started`, `onboarding_completed`)."""
    rs = RuleSet._meta.db_table
    same_ruleset = f'rs.region_id = {table}."region_id" AND rs.segment = {table}."segment"'
    onboarding = (
        f'(CASE WHEN {table}."onboarding_started" IS NOT NULL '
        f'AND {table}."onboarding_completed" IS NULL THEN (SELECT '
        f"NULLIF(rs.onboarding_cadence_days, 0) FROM {rs} rs WHERE {same_ruleset}) END)"  # nosec B608 # identifiers come from code, values go as query parameters
    )
    branches = " ".join(
        f"WHEN {p} THEN LEAST(COALESCE((SELECT NULLIF(rs.p{p}_cadence_days, 0) FROM {rs} rs "
        f"WHERE {same_ruleset}), {int(DEFAULT_CADENCE_DAYS[p])}), {onboarding})"  # nosec B608 # identifiers come from code, values go as query parameters
        for p in (1, 2)
    )
    return f'(CASE {table}."priority" {branches} END)'


def held_outcomes_sql(column: str = "outcome") -> str:
    """SQL: the activity's outcome is one of a meeting that took place
    (`engagement.rules.HELD_OUTCOMES`: not recorded, held, held late); a missed or
    rescheduled call does not count as the cadence call."""
    values = ", ".join(f"'{v!s}'" for v in HELD_OUTCOMES)  # constants, not user input
    return f"{column} IN ({values})"


def with_cadence(
    accounts: QuerySet[Account], *, now: dt.datetime | None = None
) -> QuerySet[WithAnnotations[Account, Cadence]]:
    """Annotate `cadence_days`, `last_cadence_at` and `cadence_overdue`: a P1/P2 account
    with no cadence call held within its cadence (the rule set's `p1/p2_cadence_days`, else
    the handbook default, sooner while onboarding: `cadence_days_sql`), including one that
    never had a call. A missed or rescheduled call is not a call held.

    The one definition of the cadence, in plain SQL: built
    with ORM expressions (one CASE branch per rule set, subqueries repeated wherever an
    annotation is referenced) it cost 30-90 ms of Python per query, more than the whole
    page may take. Used on querysets whose base table is portfolio_account."""
    now = now or timezone.now()
    days = cadence_days_sql()
    activity = Activity._meta.db_table
    overdue = (
        f"(CASE WHEN {days} IS NULL THEN false ELSE NOT EXISTS (SELECT 1 FROM {activity} a "
        f'WHERE a.account_id = "portfolio_account"."id" AND a.kind = %s '
        f"AND {held_outcomes_sql('a.outcome')} "
        f"AND a.occurred_at >= %s - {days} * interval '1 day') END)"  # nosec B608 # identifiers come from code, values go as query parameters
    )
    last = (
        Activity.objects.filter(
            account=OuterRef("pk"), kind=ActivityKind.CADENCE_CALL, outcome__in=HELD_OUTCOMES
        )
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    return accounts.annotate(
        cadence_days=RawSQL(days, (), output_field=IntegerField()),  # nosec B611 # SQL text built from code, values as parameters
        last_cadence_at=Subquery(last),
        cadence_overdue=RawSQL(
            overdue, (ActivityKind.CADENCE_CALL.value, now), output_field=BooleanField()
        ),  # nosec B611 # SQL text built from code, values as parameters
    )
