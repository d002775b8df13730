"""What the pages show from the domain apps (prioritization, triage, engagement, usage)
and from the Salesforce history (`portfolio.AccountEvent`, written by a trigger).

Every function runs a fixed number of queries whatever the size of the book.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery

from portfolio import writeback
from portfolio.htmx import HtmxHttpRequest
from portfolio.models import (  # type: ignore[attr-defined]  # AccountEvent: pghistory.track makes it
    Account,
    AccountEvent,
    Health,
    WritebackStatus,
)
from prioritization.charts import priority_flowchart
from prioritization.forms import ExceptionRequestForm
from prioritization.models import RuleSet
from prioritization.selectors import (
    account_priority_panel,
    changes_for_tam,
    p1_balance,
    priorities_overview_lists,
)
from triage.panels import account_panel_context as triage_panel_context
from triage.selectors import open_issue_count

# "Target about 1/3 of a book at P1" (DESIGN.md, us_enterprise), used when no rule set
# says otherwise.
DEFAULT_P1_TARGET_SHARE = 1 / 3
HISTORY_MONTHS = 6
# The trend charts (issue 15.6): a year of month ends.
TREND_MONTHS = 12


# --- Dashboard -----------------------------------------------------------------------------


def p1_target(accounts: QuerySet[Account]) -> dict:
    """The P1 target of a book from the rule sets of its accounts (one query: the book
    grouped by region and segment, each group with its rule set's targets): `share`
    (ARR-independent share of accounts, weighted by how many accounts each rule set
    covers; None when no rule set gives a share) and `text` for people."""

    ruleset = RuleSet.objects.filter(region_id=OuterRef("region_id"), segment=OuterRef("segment"))
    groups = list(
        accounts.order_by()
        .values("region_id", "segment")
        .annotate(
            n=Count("pk"),
            has_ruleset=Exists(ruleset),
            share=Subquery(ruleset.values("p1_target_share")[:1]),
            low=Subquery(ruleset.values("p1_target_min")[:1]),
            high=Subquery(ruleset.values("p1_target_max")[:1]),
            any_ruleset=Exists(RuleSet.objects.all()),
        )
    )
    weighted, covered, counts = Decimal(0), 0, []
    for group in groups:
        if not group["has_ruleset"]:
            continue
        if group["share"] is not None:
            weighted += group["share"] * group["n"]
            covered += group["n"]
        elif group["low"] is not None or group["high"] is not None:
            counts.append((group["low"], group["high"]))
    share = float(weighted / covered) if covered else None
    # An empty book has no group to say whether any rule set exists: asked apart.
    any_ruleset = groups[0]["any_ruleset"] if groups else RuleSet.objects.exists()
    if not any_ruleset and share is None:
        share = DEFAULT_P1_TARGET_SHARE
    parts = []
    if share is not None:
        parts.append(f"about {share:.0%} of the book at P1")
    for low, high in sorted(set(counts), key=lambda c: (c[0] or 0, c[1] or 0)):
        parts.append(f"{low or 0}-{high} P1 accounts" if high else f"at least {low} P1")
    return {"share": share, "text": "; ".join(parts)}


def health_mix_series(
    accounts: QuerySet[Account], *, figures: dict, today: dt.date, months: int = HISTORY_MONTHS
) -> list[tuple[str, dict[str, int]]]:
    """The health mix at the end of each of the last `months` months, from the account
    history (one query), with today's mix as the last column."""
    trend = book_trend(accounts, figures=figures, today=today, months=months)
    return [(row["label"], row["mix"]) for row in trend if row["mix"]]


def book_trend(
    accounts: QuerySet[Account],
    *,
    today: dt.date,
    figures: dict | None = None,
    months: int = TREND_MONTHS,
) -> list[dict]:
    """The book month by month (issue 15.6): for each of the last `months` months in
    which the history knows any of these accounts, their health mix and ARR at the month's
    end; then today. One aggregate query over the account history, bounded to `months`
    (each account's latest event before each month's end), whatever the book's size.

    Rows: {"label", "month" (its first day; None for today), "mix" {colour: count},
    "arr" (Decimal), "count"}. `figures` (dashboard_figures) gives today's column without
    reading the history; without it, today is the history's latest state (the trigger
    records every change, so the two agree)."""
    if accounts.query.is_empty():
        return [{"label": "Today", "month": None, "mix": {}, "arr": Decimal(0), "count": 0}]
    ids_sql, ids_params = accounts.order_by().values("pk").query.sql_with_params()
    last_full = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    month_starts = [last_full]
    while len(month_starts) < months - 1:
        month_starts.insert(0, (month_starts[0] - dt.timedelta(days=1)).replace(day=1))
    cutoffs = [(m, (m + dt.timedelta(days=32)).replace(day=1)) for m in month_starts]
    if figures is None:
        cutoffs.append((today, today + dt.timedelta(days=1)))
    # A VALUES list rather than generate_series(): the planner then knows there are a few
    # months (generate_series is guessed at 1,000 rows, which costs a 70 ms JIT compile).
    values = ", ".join(["(%s::date, %s::date)"] * len(cutoffs))
    sql = f"""
        SELECT months.m, h.health, count(*), coalesce(sum(h.arr), 0)
        FROM (VALUES {values}) AS months(m, cutoff)
        CROSS JOIN LATERAL (
            SELECT DISTINCT ON (e.pgh_obj_id) e.health, e.arr
            FROM {AccountEvent._meta.db_table} e
            WHERE e.pgh_obj_id IN ({ids_sql})
              AND e.pgh_created_at < months.cutoff
            ORDER BY e.pgh_obj_id, e.pgh_created_at DESC
        ) h
        GROUP BY months.m, h.health
    """  # nosec B608 # identifiers come from code, values go as query parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(v for pair in cutoffs for v in pair), *ids_params])
        rows = cursor.fetchall()
    by_month: dict[dt.date, dict] = defaultdict(lambda: {"mix": {}, "arr": Decimal(0), "n": 0})
    for month, health, count, arr in rows:
        entry = by_month[month]
        if health:
            entry["mix"][health] = count
        entry["arr"] += Decimal(arr)
        entry["n"] += count
    series = [
        {
            "label": month.strftime("%b"),
            "month": month,
            "mix": by_month[month]["mix"],
            "arr": by_month[month]["arr"],
            "count": by_month[month]["n"],
        }
        for month in month_starts
        if by_month.get(month, {}).get("n")
    ]
    if figures is not None:
        today_row = {
            "mix": {c.value: figures[c.value] for c in Health},
            "arr": Decimal(figures["book_arr"]),
            "n": figures["count"],
        }
    else:
        today_row = by_month.get(today) or {"mix": {}, "arr": Decimal(0), "n": 0}
    series.append(
        {
            "label": "Today",
            "month": None,
            "mix": today_row["mix"],
            "arr": today_row["arr"],
            "count": today_row["n"],
        }
    )
    return series


def changes_since(
    accounts: QuerySet[Account], *, since: dt.datetime | None, limit: int = 20
) -> list[dict]:
    """Priority and health changes of the book since `since`, newest first, from the
    account history (one query; each event compared with the one before it)."""
    if since is None:
        return []
    previous = AccountEvent.objects.filter(
        pgh_obj_id=OuterRef("pgh_obj_id"), pgh_created_at__lt=OuterRef("pgh_created_at")
    ).order_by("-pgh_created_at", "-pgh_id")
    events = (
        AccountEvent.objects.filter(
            pgh_obj_id__in=accounts.order_by().values("pk"),
            pgh_created_at__gt=since,
            pgh_label="update",
        )
        .annotate(
            prev_health=Subquery(previous.values("health")[:1]),
            prev_priority=Subquery(previous.values("priority")[:1]),
        )
        .order_by("-pgh_created_at", "-pgh_id")
        .values(
            "pgh_created_at",
            "health",
            "priority",
            "prev_health",
            "prev_priority",
            "pgh_obj__name",
            "pgh_obj__salesforce_id",
        )
    )
    changes: list[dict] = []
    for event in events[: limit * 2]:
        base = {
            "name": event["pgh_obj__name"],
            "salesforce_id": event["pgh_obj__salesforce_id"],
            "at": event["pgh_created_at"],
        }
        old, new = event["prev_priority"], event["priority"]
        if old != new:
            changes.append(
                {
                    **base,
                    "label": "priority",
                    "old": f"P{old}" if old else "",
                    "new": f"P{new}" if new else "",
                }
            )
        if event["health"] != event["prev_health"]:
            changes.append(
                {
                    **base,
                    "label": "health",
                    "old": event["prev_health"] or "",
                    "new": event["health"] or "",
                }
            )
    return changes[:limit]


def open_triage_count(accounts: QuerySet[Account]) -> int:
    """Open triage issues of the book."""
    return open_issue_count(accounts)


def quarterly_review_changes(tam, *, limit: int = 50) -> list:
    """The TAM's priority changes since the latest quarterly review, the list the review
    notifies each TAM with (2 queries)."""
    return list(changes_for_tam(tam)[:limit])


# --- Account page --------------------------------------------------------------------------


def account_panels(request: HtmxHttpRequest, account: Account) -> dict:
    """Context for the account page's priority, health and triage panels. The engagement
    panel (checklist, project, cadence, success plan, personas, ...) costs about as much
    as the rest of the page together, so the page loads it with htmx right after it shows
    (hx-trigger="load"); without JS it is a link.

    Several apps' forms share this page; each form sets its own prefixed `auto_id`
    (id_health_*, id_triage_*, id_exception_*), so ids stay unique after htmx re-renders
    them too."""
    return {
        **_priority_panel(request, account),
        **triage_panel_context(request, account),
        "account_writebacks": _writeback_panel(account),
    }


def _writeback_panel(account: Account) -> list:
    """What Portfolio decided for this account and has not written to Salesforce yet:
    pending, in conflict, refused (at most one row a field; 1-2 queries)."""
    rows = account.writebacks.filter(status__in=WritebackStatus.open()).select_related("run")
    return writeback.label_rows(list(rows.order_by("field")))


def _priority_panel(request: HtmxHttpRequest, account: Account) -> dict:
    """The stored decision with its trace (the flowchart for us_enterprise), the
    exceptions and the request form, from the prioritization app (4 queries)."""
    panel = account_priority_panel(request.user, account)
    decision = panel["decision"]
    model = decision.model if decision else (panel["ruleset"].model if panel["ruleset"] else "")
    flowchart = priority_flowchart(decision, panel["ruleset"])
    return {
        **panel,
        "form": ExceptionRequestForm(),
        "priority_model": model,
        "flowchart": flowchart,
    }


# --- Team view -----------------------------------------------------------------------------


def team_panels(request: HtmxHttpRequest, tams: list) -> dict:
    """Pending exception approvals (the first rows, with their count) and the P1 balance
    per TAM (4 queries)."""
    balance = p1_balance(tams)
    by_tam: dict[int, list] = defaultdict(list)
    for row in balance:
        by_tam[row.tam_id].append(row)
    return {
        **priorities_overview_lists(request.user, keys=("pending",)),
        "balance_by_tam": dict(by_tam),
    }
