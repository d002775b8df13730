"""Build `AccountFacts` for many accounts with a fixed number of queries.

Per batch: the accounts (1), their ARR ranks (1, unless the caller computed all ranks
once for the run), the nearest open up-tier opportunity (1), exceptions (1), open
triage issues (1, when the triage app has them) and the stages in use from product usage
(1). Never a query per account.

`in_triage`: the account has an open `triage.models.TriageIssue`. Health amber/red is read
from `Account.health` and counts as "at risk" in the Commercial rule too (docs/rules.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Min

from portfolio.models import Account, Opportunity
from prioritization.models import ExceptionStatus, PriorityException, RuleSet
from prioritization.rules import AccountFacts, EmeaFacts, ExceptionFacts
from triage.models import IssueStatus, TriageIssue
from usage.selectors import stages_adopted_by_account

ACCOUNT_FIELDS = (
    "id",
    "salesforce_id",
    "name",
    "region_id",
    "segment",
    "arr",
    "tam_id",
    "parent_id",
    "parent_salesforce_id",
    "digital_only",
    "onboarding_started",
    "onboarding_completed",
    "stage_adoption_hours_per_week",
    "infrastructure_change_hours_per_week",
    "churn_risk",
    "health",
    "success_plan",
    "critical_project",
    "stages_adopted",
    "key_logo",
    "channel_engagement",
    "nps",
    "org_change",
    "weekly_engagement_requested",
    "expansion_play",
    "tam_handover",
    "lam",
    "licensed_seats",
    "priority",
)

Mapping_ = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class AccountRow:
    """The account columns a re-evaluation needs beside its facts."""

    id: int
    salesforce_id: str
    name: str
    region_id: str
    segment: str
    tam_id: int | None
    priority: int | None
    exception_id: int | None


def model_mapping(rulesets: Iterable[RuleSet]) -> dict[tuple[str, str], str]:
    return {(rs.region_id, rs.segment): rs.model for rs in rulesets}


def arr_ranks(mapping: Mapping_, account_ids: Sequence[int] | None = None) -> dict[int, int]:
    """Rank by ARR (1 = largest) within each model's population: TAM-assigned accounts
    whose region+segment maps to that model, less those that are P4 (digital-only under
    their rule set's Public Sector trial: "Pr4 is only for our digital customers and not
    for the TAM-assigned segment"). `mapping` may hold unsaved edits (the admin what-if)."""
    keys = list(mapping.items())
    params: list[Any] = [
        [r for (r, _), _ in keys],
        [s for (_, s), _ in keys],
        [m for _, m in keys],
    ]
    where = ""
    if account_ids is not None:
        where = "WHERE ranked.id = ANY(%s)"
        params.append(list(account_ids))
    sql = f"""
        SELECT ranked.id, ranked.arr_rank FROM (
            SELECT a.id, RANK() OVER (PARTITION BY m.model ORDER BY a.arr DESC) AS arr_rank
            FROM {Account._meta.db_table} a
            JOIN unnest(%s::text[], %s::text[], %s::text[]) AS m(region, segment, model)
              ON m.region = a.region_id AND m.segment = a.segment
            LEFT JOIN {RuleSet._meta.db_table} rs
              ON rs.region_id = a.region_id AND rs.segment = a.segment
            WHERE a.tam_id IS NOT NULL
              AND NOT (a.digital_only AND coalesce(rs.digital_tam_trial, false))
        ) ranked {where}
    """  # noqa: S608 - table name from the model, values as parameters  # nosec B608 # identifiers come from code, values go as query parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def ids_filter(field: str, ids: Sequence[int], contiguous: bool) -> dict[str, Any]:
    """An id range for a contiguous slice of all account ids (a full run: cheap to send
    and plan), `field__in` for a few chosen accounts."""
    if contiguous and ids:
        # gte/lte, not range: Django has no range lookup on a ForeignKey.
        return {f"{field}__gte": ids[0], f"{field}__lte": ids[-1]}
    if contiguous:
        return {f"{field}__in": []}
    return {f"{field}__in": list(ids)}


def _uptier_dates(ids: Sequence[int], contiguous: bool) -> dict[int, dt.date]:
    rows = (
        Opportunity.objects.filter(
            **ids_filter("account_id", ids, contiguous),
            is_closed=False,
            type=settings.SALESFORCE_FIELDS["opportunity_uptier_type"],
            close_date__isnull=False,
        )
        .values("account_id")
        .annotate(nearest=Min("close_date"))
        .values_list("account_id", "nearest")
    )
    return dict(rows)


def _exceptions(
    ids: Sequence[int], as_of: dt.date, contiguous: bool, quarterly: bool
) -> dict[int, tuple[int, ExceptionFacts]]:
    """The exception that feeds the rules: an approved, unexpired one; else a pending one
    (shown in the trace as "requested, not approved"). At a quarterly review an approved
    exception "until the next quarterly review" (no expiry date) has ended: the review
    ends it in the batch's own transaction, and facts read before that see what they
    would see after."""
    rows = (
        PriorityException.objects.filter(
            **ids_filter("account_id", ids, contiguous),
            status__in=[ExceptionStatus.APPROVED, ExceptionStatus.PENDING],
        )
        .exclude(expires_on__lt=as_of)
        .order_by("account_id", "created_at")
        .values_list("account_id", "id", "requested_priority", "status")
    )
    if quarterly:
        rows = rows.exclude(status=ExceptionStatus.APPROVED, expires_on__isnull=True)
    out: dict[int, tuple[int, ExceptionFacts]] = {}
    for account_id, exc_id, priority, status in rows:
        approved = status == ExceptionStatus.APPROVED
        current = out.get(account_id)
        if current is None or approved or not current[1].approved:
            out[account_id] = (exc_id, ExceptionFacts(priority=priority, approved=approved))
    return out


def _in_triage(ids: Sequence[int], contiguous: bool) -> set[int]:
    """Accounts with an open triage issue (the Customer ER board)."""
    return set(
        TriageIssue.objects.filter(
            **ids_filter("account_id", ids, contiguous), status=IssueStatus.OPEN
        ).values_list("account_id", flat=True)
    )


def _facts_from(
    row: Mapping[str, Any],
    *,
    as_of: dt.date,
    rank: int | None,
    uptier: dt.date | None,
    exception: ExceptionFacts | None,
    in_triage: bool,
    usage_stages: int | None = None,
) -> AccountFacts:
    started, completed = row["onboarding_started"], row["onboarding_completed"]
    onboarding = (
        started is not None and started <= as_of and (completed is None or completed > as_of)
    )
    lam, seats = row["lam"], row["licensed_seats"]
    return AccountFacts(
        as_of=as_of,
        region=row["region_id"],
        segment=row["segment"],
        arr=float(row["arr"]),
        arr_rank=rank,
        tam_assigned=row["tam_id"] is not None,
        unmanaged_child=bool(row["parent_id"] or row["parent_salesforce_id"])
        and row["tam_id"] is None,
        digital_only=row["digital_only"],
        onboarding_started=started,
        onboarding_completed=completed,
        uptier_opportunity_close_date=uptier,
        stage_adoption_hours_per_week=float(row["stage_adoption_hours_per_week"]),
        infrastructure_change_hours_per_week=float(row["infrastructure_change_hours_per_week"]),
        churn_risk=row["churn_risk"],
        health=row["health"] or None,
        in_triage=in_triage,
        success_plan=row["success_plan"],
        critical_project=row["critical_project"],
        # The TAM's number wins where given (not 0); else the stages product usage shows.
        stages_adopted=row["stages_adopted"] or usage_stages or 0,
        stages_adopted_source="usage" if not row["stages_adopted"] and usage_stages else "",
        key_logo=row["key_logo"],
        channel_engagement=row["channel_engagement"],
        nps=row["nps"],
        emea=EmeaFacts(
            org_change=row["org_change"],
            onboarding=onboarding,
            infrastructure_change=float(row["infrastructure_change_hours_per_week"]) > 0,
            weekly_engagement_requested=row["weekly_engagement_requested"],
            lam_seat_gap=bool(lam and seats is not None and seats < lam),
            expansion_play=row["expansion_play"],
            tam_handover=row["tam_handover"],
        ),
        exception=exception,
    )


def build_facts(
    account_ids: Sequence[int],
    *,
    as_of: dt.date,
    mapping: Mapping_,
    ranks: Mapping[int, int] | None = None,
    contiguous: bool = False,
    quarterly: bool = False,
) -> list[tuple[AccountRow, AccountFacts]]:
    """Facts for the given accounts, in id order. `ranks` may be precomputed for a whole
    run (one query instead of one per batch). `contiguous`: the ids are a slice of *all*
    account ids in order, so id ranges select exactly them. `quarterly`: for a quarterly
    review (its exceptions, `_exceptions`)."""
    ids = list(account_ids)
    rows = list(
        Account.objects.filter(**ids_filter("pk", ids, contiguous))
        .order_by("pk")
        .values(*ACCOUNT_FIELDS)
    )
    if ranks is None:
        ranks = arr_ranks(mapping, ids)
    uptier = _uptier_dates(ids, contiguous)
    exceptions = _exceptions(ids, as_of, contiguous, quarterly)
    triage = _in_triage(ids, contiguous)
    stages = stages_adopted_by_account(ids, today=as_of)
    out = []
    for row in rows:
        exc = exceptions.get(row["id"])
        facts = _facts_from(
            row,
            as_of=as_of,
            rank=ranks.get(row["id"]),
            uptier=uptier.get(row["id"]),
            exception=exc[1] if exc else None,
            in_triage=row["id"] in triage,
            usage_stages=stages.get(row["id"]),
        )
        out.append(
            (
                AccountRow(
                    id=row["id"],
                    salesforce_id=row["salesforce_id"],
                    name=row["name"],
                    region_id=row["region_id"],
                    segment=row["segment"],
                    tam_id=row["tam_id"],
                    priority=row["priority"],
                    exception_id=exc[0] if exc and exc[1].approved else None,
                ),
                facts,
            )
        )
    return out
