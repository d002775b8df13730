"""Reads of the triage app, scoped by `portfolio.selectors.accounts_for_user` (THE rule).

Every function runs a fixed number of queries whatever the size of the book. Panels for
other pages (the dashboard and account page include them):

- `health_panel(account)`: current colour, suggested vs chosen, reasons, history;
- `open_issue_count(accounts)`: open issues of a (scoped) account queryset;
- `health_changes_since(accounts, since=...)`: colour changes, newest first.

The health signals the assessments read (`signals_with_sources`: from data, from the TAM,
from product usage) and the current assessments are here too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from engagement.rules import EBR_WINDOW_DAYS, HELD_OUTCOMES
from portfolio import datacache
from portfolio.models import Account, Activity, ActivityKind, CallOutcome, Health, Team
from portfolio.paging import Capped, capped, capped_counts, capped_union
from portfolio.roles import role_of
from portfolio.selectors import accounts_for_user
from triage import health
from triage import labels as triage_labels
from triage.models import (
    CustomerERCall,
    HealthAssessment,
    HealthSignals,
    IssueStatus,
    TriageEvent,
    TriageIssue,
    TriageTeamMember,
    TriageUpdate,
)
from usage.selectors import usage_measures_for_accounts

COLOUR_ORDER: tuple[str, ...] = ("red", "amber", "yellow", "green")
RENEWAL_WINDOW_DAYS = 90


def issues_for_user(user: User) -> QuerySet[TriageIssue]:
    return TriageIssue.objects.filter(account__in=accounts_for_user(user))


def issue_for_user(user: User, issue_id: int) -> TriageIssue:
    """The issue with its account, or 404 when the user may not see the account."""
    return get_object_or_404(
        issues_for_user(user).select_related("account", "account__tam", "account__region"),
        pk=issue_id,
    )


def account_for_user(user: User, salesforce_id: str) -> Account:
    return get_object_or_404(
        accounts_for_user(user).select_related("tam", "region", "owner"),
        salesforce_id=salesforce_id,
    )


# --- Panels --------------------------------------------------------------------------------


def current_assessment(account: Account) -> HealthAssessment | None:
    return (
        HealthAssessment.objects.filter(account=account, is_current=True)
        .select_related("chosen_by")
        .first()
    )


def health_panel(account: Account, *, history: int = 10) -> dict:
    """The account's health: the effective colour, the suggestion and the TAM's choice
    (and whether they differ), the reasons, and the last `history` assessments. 2 queries."""
    rows = list(
        HealthAssessment.objects.filter(account=account)
        .select_related("chosen_by", "created_by")
        .order_by("-created_at", "-pk")[: history + 1]
    )
    current = next((r for r in rows if r.is_current), None)
    return {
        "account": account,
        "colour": account.health,
        "current": current,
        "suggested": current.suggested_colour if current else "",
        "chosen": current.chosen_colour if current else "",
        "differs": bool(current and current.differs),
        "reasons": current.reasons if current else [],
        "history": rows[:history],
    }


def triage_panel(account: Account) -> dict:
    """The account's open triage issue (with its team and its last update: when and what,
    `last_update_at` / `last_update_body`, in the issues' query) and closed ones. 2 queries
    (the issues, their teams)."""
    last_update = TriageUpdate.objects.filter(issue=OuterRef("pk")).order_by("-created_at", "-pk")
    issues = list(
        TriageIssue.objects.filter(account=account)
        .annotate(
            last_update_at=Subquery(last_update.values("created_at")[:1]),
            last_update_body=Subquery(last_update.values("body")[:1]),
        )
        .prefetch_related(
            Prefetch("team", queryset=TriageTeamMember.objects.select_related("user")),
        )
        .order_by("-opened_at")[:5]
    )
    open_issue = next((i for i in issues if i.is_open), None)
    return {
        "account": account,
        "issue": open_issue,
        "closed_issues": [i for i in issues if not i.is_open],
    }


def open_issue_count(accounts: QuerySet[Account]) -> int:
    return TriageIssue.objects.filter(account__in=accounts, status=IssueStatus.OPEN).count()


def health_changes(accounts: QuerySet[Account]) -> QuerySet[HealthAssessment]:
    """Effective colour changes of these accounts, newest first."""
    return (
        HealthAssessment.objects.filter(account__in=accounts)
        .exclude(colour=F("previous_colour"))
        .select_related("account", "account__tam", "chosen_by")
        .order_by("-created_at", "-pk")
    )


def health_changes_since(
    accounts: QuerySet[Account], *, since: dt.datetime | None, limit: int = 50
) -> list[HealthAssessment]:
    """Effective colour changes of these accounts since `since`, newest first."""
    qs = health_changes(accounts)
    if since is not None:
        qs = qs.filter(created_at__gt=since)
    return list(qs[:limit])


def health_signals_of(account: Account) -> HealthSignals | None:
    return HealthSignals.objects.filter(account=account).first()


# --- Health signals and assessments (read by the assessment services) ------------------

# Window over which cadence attendance is read from the recorded call outcomes.
CADENCE_WINDOW_DAYS = 180
DATA_ONLY_SIGNALS = ("nps", "ebrs_last_12_months", "onboarding", *health.USAGE_ONLY_SIGNALS)
# The signals the TAM answers (`HealthSignals`); the others come from data.
TAM_SIGNAL_FIELDS: tuple[str, ...] = tuple(
    name for name in health.SIGNAL_NAMES if name not in DATA_ONLY_SIGNALS
)


def signals_for_accounts(
    accounts: Sequence[Account], *, now: dt.datetime | None = None
) -> dict[int, health.Signals]:
    """The health signals of each account (`signals_with_sources` without the sources)."""
    return {pk: signals for pk, (signals, _) in signals_with_sources(accounts, now=now).items()}


def signals_with_sources(
    accounts: Sequence[Account], *, now: dt.datetime | None = None
) -> dict[int, tuple[health.Signals, dict[str, tuple[str, str]]]]:
    """The health signals of each account and, per signal, (who answered it, evidence); in
    four queries whatever the batch size.

    From data: NPS (Account.nps), EBRs held in the last 12 months
    (`engagement.rules.EBR_WINDOW_DAYS`, as the engagement panel counts them), cadence
    attendance from the outcomes the TAM recorded on the cadence calls of the last 180
    days (held / late / missed; calls never scheduled or never given an outcome say
    nothing: unknown), onboarding (Account.onboarding_*). From the TAM: every other signal
    (HealthSignals); the TAM's cadence attendance, when given, overrides the data. From
    product usage (`usage.selectors.usage_measures_for_accounts`): adoption, releases
    behind, tickets, stages, new features, for the signals the TAM left unknown (the
    TAM's answer wins; the usage figures are kept beside it as evidence)."""
    now = now or timezone.now()
    ids = [a.pk for a in accounts]
    tam_rows = {row.account_id: row for row in HealthSignals.objects.filter(account_id__in=ids)}
    usage = usage_measures_for_accounts(accounts, today=timezone.localdate(now))
    recent_call = Q(
        kind=ActivityKind.CADENCE_CALL,
        occurred_at__gte=now - dt.timedelta(days=CADENCE_WINDOW_DAYS),
    )
    counts = {
        row["account_id"]: row
        for row in Activity.objects.filter(account_id__in=ids)
        .order_by()
        .values("account_id")
        .annotate(
            ebrs=Count(
                "pk",
                filter=Q(
                    kind=ActivityKind.EBR,
                    outcome__in=HELD_OUTCOMES,
                    occurred_at__gte=now - dt.timedelta(days=EBR_WINDOW_DAYS),
                ),
            ),
            held=Count("pk", filter=recent_call & Q(outcome=CallOutcome.HELD)),
            late=Count("pk", filter=recent_call & Q(outcome=CallOutcome.LATE)),
            missed=Count("pk", filter=recent_call & Q(outcome=CallOutcome.MISSED)),
        )
    }
    result = {}
    for account in accounts:
        row = tam_rows.get(account.pk)
        data: dict = {}
        from_data: dict[str, str] = {}
        if row is not None:
            for name in TAM_SIGNAL_FIELDS:
                value = getattr(row, name)
                data[name] = None if value == "" else value
        activity = counts.get(account.pk, {"ebrs": 0, "held": 0, "late": 0, "missed": 0})
        data["nps"] = health.nps_class(account.nps)
        data["ebrs_last_12_months"] = activity["ebrs"]
        if not data.get("cadence_attendance"):
            data["cadence_attendance"] = health.cadence_attendance_from_outcomes(
                held=activity["held"], late=activity["late"], missed=activity["missed"]
            )
            from_data["cadence_attendance"] = "data"
        if account.onboarding_started:
            data["onboarding"] = account.onboarding_completed is None
        from_data.update(nps="data", ebrs_last_12_months="data", onboarding="data")
        measures, thresholds = usage.get(account.pk, (None, None))
        derived = health.usage_signals(measures, thresholds) if measures and thresholds else {}
        data, sources = health.merge_usage(data, derived, known_source=from_data)
        result[account.pk] = (health.Signals(**data), sources)
    return result


def current_assessments(account_ids: Iterable[int]) -> dict[int, HealthAssessment]:
    """The current assessment of each of these accounts (that have one), by account id."""
    return {
        a.account_id: a
        for a in HealthAssessment.objects.filter(account_id__in=list(account_ids), is_current=True)
    }


def health_reasons_text(account: Account) -> str:
    """The current assessment's reasons (and the TAM's override), one Markdown bullet each:
    the "Reason for Health Score" of a triage issue opened automatically."""
    current = current_assessments([account.pk]).get(account.pk)
    if current is None or not current.reasons:
        return ""
    lines = [f"* {r['colour'].title()}: {r['detail']}" for r in current.reasons]
    if current.is_override:
        lines.append(f"* TAM's choice ({current.chosen_colour}): {current.override_reason}")
    return "\n".join(lines)


# --- Boards --------------------------------------------------------------------------------


@dataclass
class Column:
    key: str
    title: str
    issues: Capped[TriageIssue] = field(default_factory=lambda: Capped(key="", rows=[], count=0))


def board(
    user: User,
    *,
    kind: str,
    region: str = "",
    colour: str = "",
    show: str = "",
    page: int = 1,
) -> list[Column]:
    """Open issues as columns: the "Colours" board (red, amber, yellow, green) or the
    region board (one column per region, and "Other" for issues of no listed region).

    Each column is bounded (`portfolio.paging`): its largest accounts by ARR first, at most
    `SECTION_ROWS` cards and a capped count, or, for the column `show` names, page `page`
    of all its cards. Two queries (the cards of every column, their counts) whatever the
    board's size."""
    issues = (
        issues_for_user(user)
        .filter(status=IssueStatus.OPEN)
        .select_related("account", "account__tam")
        .order_by("-account__arr", "pk")
    )
    if region:
        issues = issues.filter(account__region_id=region)
    if colour:
        issues = issues.filter(colour=colour)
    if kind == "regions":
        keys = [(r, r) for r in triage_labels.REGIONS]
        per_column = {key: issues.filter(region=key) for key, _ in keys}
        keys.append(("other", "Other"))
        per_column["other"] = issues.exclude(region__in=triage_labels.REGIONS)
    else:
        keys = [(c, c.title()) for c in COLOUR_ORDER]
        per_column = {key: issues.filter(colour=key) for key, _ in keys}
    counts = capped_counts(per_column)
    pages = capped_union(per_column, counts, show=show, page=page)
    columns = [Column(key=key, title=title, issues=pages[key]) for key, title in keys]
    # "Other" only when it has cards (an issue of a region the board does not list).
    return [c for c in columns if c.key != "other" or c.issues.count]


def issue_detail(issue: TriageIssue) -> dict:
    return {
        "issue": issue,
        "team": list(issue.team.select_related("user")),
        "updates": list(issue.updates.select_related("author").order_by("-created_at")[:50]),
        "events": list(issue.events.select_related("actor").order_by("-created_at")[:50]),
    }


# --- The weekly Customer ER agenda ----------------------------------------------------------


def last_call() -> CustomerERCall | None:
    return CustomerERCall.objects.order_by("-held_at").first()


def unassigned_accounts_for_user(user: User) -> QuerySet[Account]:
    """Accounts without a TAM that a manager reviews: those in the regions their teams
    cover (an admin: all). Accounts without a TAM belong to no book, so the book scoping
    rule cannot reach them."""
    role = role_of(user)
    unassigned = Account.objects.filter(tam__isnull=True)
    if role == "admin":
        return unassigned
    if role == "manager":
        regions = Team.objects.filter(manager=user, region__isnull=False).values("region_id")
        return unassigned.filter(region_id__in=regions)
    return Account.objects.none()


AGENDA_SECTIONS: tuple[str, ...] = (
    "new_issues",
    "changes",
    "board_moves",
    "missing_issues",
    "mismatched_issues",
    "unclassified_red",
    "unassigned_renewals",
)


def agenda(
    user: User,
    *,
    today: dt.date,
    region: str = "",
    min_arr: Decimal | None = None,
    show: str = "",
    page: int = 1,
) -> dict:
    """The weekly Customer ER call's agenda (handbook, "Account Triage Project"):

    - issues still labelled ~New ("a peer review of new at risk accounts");
    - colour changes since the last call;
    - the five-minute check: "ensure that all Amber and Red accounts have indeed been
      added to the board"; "make sure that all issues in the project have the correct
      health score according to Salesforce"; "review the accounts that do not have a
      Technical Account Manager that are due for renewal within the next 90 days ...
      filter by region and ARR".

    Every section is bounded (`portfolio.paging`): its first rows and a count capped at
    `COUNT_CAP`, or, for the section `show` names, page `page` of all its rows. So the
    agenda costs the same for a team of 2,000 accounts as for an admin's million: one
    query per section, one for all the counts (and the last call), whatever the data."""
    accounts = accounts_for_user(user)
    if region:
        accounts = accounts.filter(region_id=region)
    if min_arr is not None:
        accounts = accounts.filter(arr__gte=min_arr)
    open_issues = TriageIssue.objects.filter(status=IssueStatus.OPEN)
    calls = CustomerERCall.objects.order_by("-held_at").values("held_at")[:1]
    # The last call as a subquery, so the sections that start from it need no query of
    # their own for it; before the first call they start from the beginning.
    since = Coalesce(Subquery(calls), Value(dt.datetime.min.replace(tzinfo=dt.UTC)))
    unassigned = unassigned_accounts_for_user(user).filter(
        renewal_date__gte=today,
        renewal_date__lte=today + dt.timedelta(days=RENEWAL_WINDOW_DAYS),
    )
    if region:
        unassigned = unassigned.filter(region_id=region)
    if min_arr is not None:
        unassigned = unassigned.filter(arr__gte=min_arr)
    sections: dict[str, QuerySet] = {
        "new_issues": open_issues.filter(account__in=accounts, is_new=True)
        .select_related("account", "account__tam")
        .order_by("opened_at", "pk"),
        "changes": health_changes(accounts).filter(created_at__gt=since),
        "board_moves": TriageEvent.objects.filter(issue__account__in=accounts, kind="moved")
        .filter(created_at__gt=since)
        .select_related("issue", "issue__account", "actor")
        .order_by("-created_at", "-pk"),
        "missing_issues": accounts.filter(health__in=[Health.AMBER, Health.RED])
        .filter(~Exists(open_issues.filter(account=OuterRef("pk"))))
        .select_related("tam")
        .order_by("-arr", "pk"),
        "mismatched_issues": open_issues.filter(account__in=accounts)
        .exclude(account__health="")
        .exclude(colour=F("account__health"))
        .select_related("account", "account__tam")
        .order_by("-account__arr", "pk"),
        "unclassified_red": open_issues.filter(
            account__in=accounts, colour=Health.RED, churn_class=""
        )
        .select_related("account")
        .order_by("opened_at", "pk"),
        "unassigned_renewals": unassigned.select_related("region").order_by(
            "renewal_date", "-arr", "pk"
        ),
    }
    show = show if show in sections else ""
    # The counts are the agenda's one query that reads every section whole (about 20 ms
    # for a manager's 2,000 accounts at 1M): cached under the data version, per viewer
    # and filters; a card moved, a fix or a call recorded is a write, so they follow.
    counts = datacache.cached(
        "agenda_counts",
        (user.pk, region, min_arr if min_arr is not None else "", today),
        lambda: capped_counts(sections, scalars={"last_call_at": calls}),
    )
    held_at = counts.pop("last_call_at")
    context: dict = {
        key: capped(key, qs, counts[key], show=show, page=page) for key, qs in sections.items()
    }
    missing, mismatched = context["missing_issues"], context["mismatched_issues"]
    fix_count = missing.count + mismatched.count
    context.update(
        {
            "last_call": CustomerERCall(held_at=held_at) if held_at else None,
            "show": show,
            "check_ok": fix_count == 0,
            "fix_count": fix_count,
            "fix_label": (
                f"{fix_count:,}+"
                if missing.count_capped or mismatched.count_capped
                else f"{fix_count:,}"
            ),
        }
    )
    return context
