"""Reads of the prioritization app, for its own pages and for the dashboard's."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, F, Q, QuerySet, Subquery, Value
from django.utils import timezone

from portfolio.models import Account, SalesManager, Team
from portfolio.paging import Capped, capped, capped_counts
from portfolio.roles import GROUP_SALES_MANAGEMENT, is_sales_manager, role_of
from portfolio.selectors import accounts_for_user
from prioritization.facts import arr_ranks, build_facts, model_mapping
from prioritization.models import (
    ExceptionKind,
    ExceptionStatus,
    PriorityDecision,
    PriorityException,
    PriorityReview,
    ReviewCause,
    RuleSet,
)
from prioritization.rules import FLOWS, RULES, Params, evaluate

# --- Rule sets and decisions ------------------------------------------------------------------


def ruleset_for(*, region: str, segment: str) -> RuleSet | None:
    return RuleSet.objects.filter(region_id=region, segment=segment).first()


def ruleset_of(account: Account) -> RuleSet | None:
    """The rule set of the account's region and segment: the one read with the account
    (`select_related("ruleset")`, no query), else `ruleset_for` (one query)."""
    if Account._meta.get_field("ruleset").is_cached(account):
        return account.ruleset
    return ruleset_for(region=account.region_id, segment=account.segment)


def decision_for_account(account: Account) -> PriorityDecision | None:
    """The stored decision behind the account's current priority, with its trace."""
    return (
        PriorityDecision.objects.filter(account=account)
        .select_related("ruleset_version__ruleset", "actor", "exception__decided_by", "review")
        .order_by("-decided_at", "-id")
        .first()
    )


P3_P4_EXPECTATIONS = {
    3: "Non-managed child accounts only",
    4: "Digital-enablement only customers",
}


def engagement_expectations_for(account: Account) -> dict[str, Any]:
    """What the TAM owes this account at its current priority, from its rule set:
    {"priority", "label", "onboarding", "call_frequency", "cadence_days", "success_plan",
    "ebrs_per_year", "qa_channel", "note", "ruleset"} (empty strings / None where the
    rule set says nothing; P3/P4 carry only the handbook's definition in "note")."""
    return expectations_under(account, ruleset_of(account))


def expectations_under(account: Account, ruleset: RuleSet | None) -> dict[str, Any]:
    """`engagement_expectations_for` under a rule set the caller has already read."""
    priority = account.priority
    out: dict[str, Any] = {
        "priority": priority,
        "label": f"P{priority}" if priority else "",
        "onboarding": "",
        "call_frequency": "",
        "cadence_days": None,
        "success_plan": "",
        "ebrs_per_year": "",
        "qa_channel": "",
        "note": P3_P4_EXPECTATIONS.get(priority or 0, ""),
        "ruleset": None,
    }
    if ruleset is None or priority not in (1, 2):
        return out
    for name in (
        "onboarding",
        "call_frequency",
        "cadence_days",
        "success_plan",
        "ebrs_per_year",
        "qa_channel",
    ):
        out[name] = getattr(ruleset, f"p{priority}_{name}")
    out["ruleset"] = f"{ruleset.region_id} {ruleset.get_segment_display()} v{ruleset.version}"
    return out


# --- Exceptions ----------------------------------------------------------------------------------


def exceptions_for_account(account: Account) -> QuerySet[PriorityException]:
    return PriorityException.objects.filter(account=account).select_related(
        "requested_by", "decided_by", "account_executive"
    )[:10]


def addressed_to_sales_management(exception: PriorityException) -> bool:
    """EMEA Enterprise requests go to the regional Sales Management team: "Exceptions
    will be addressed to the regional Sales Management team and documented"
    (tam-account-engagement.md, EMEA Enterprise). Every other request keeps the TAM's
    manager as the one who decides."""
    return exception.kind == ExceptionKind.EMEA_PROPOSAL


def sales_regions_of(user: User) -> set[str]:
    """The region codes a sales manager covers (empty for anyone else)."""
    if not is_sales_manager(user):
        return set()
    return set(
        SalesManager.regions.through.objects.filter(salesmanager__user=user).values_list(
            "region_id", flat=True
        )
    )


def can_decide_exception(user: User, exception: PriorityException) -> bool:
    """Never on one's own request. An EMEA Enterprise request: only a sales manager
    covering the account's region. Any other: only a manager of a team the account's TAM
    belongs to."""
    if not user.is_authenticated or user.pk == exception.requested_by_id:
        return False
    if addressed_to_sales_management(exception):
        return exception.account.region_id in sales_regions_of(user)
    tam_id = exception.account.tam_id
    if tam_id is None:
        return False
    return Team.objects.filter(manager=user, tams=tam_id).exists()


def exceptions_for_user(user: User) -> QuerySet[PriorityException]:
    """The requests a user may see: those on accounts they see, and for a sales manager
    the EMEA Enterprise requests of accounts in the regions they cover (and only those:
    a sales manager sees no book)."""
    scope = Q(account__in=accounts_for_user(user))
    regions = sales_regions_of(user)
    if regions:
        scope |= Q(kind=ExceptionKind.EMEA_PROPOSAL, account__region_id__in=regions)
    return PriorityException.objects.filter(scope)


def pending_exceptions_for_manager(
    user: User,
) -> QuerySet[PriorityException]:
    """Requests waiting for this user: for a manager, pending requests on accounts of
    TAMs in their teams (their own included so they see them, but they cannot decide
    those; EMEA Enterprise ones are shown to them as informed, Sales Management decides);
    for a sales manager, the pending EMEA Enterprise requests of their regions."""
    scope = Q(pk__in=[])
    if role_of(user) in ("manager", "admin"):
        team_tams = Team.tams.through.objects.filter(team__manager=user).values("user_id")
        scope |= Q(account__tam_id__in=team_tams)
    regions = sales_regions_of(user)
    if regions:
        scope |= Q(kind=ExceptionKind.EMEA_PROPOSAL, account__region_id__in=regions)
    if scope == Q(pk__in=[]):
        return PriorityException.objects.none()
    return (
        PriorityException.objects.filter(scope, status=ExceptionStatus.PENDING)
        .select_related("account", "account__tam", "requested_by", "account_executive")
        .order_by("created_at")
    )


def exception_people(account: Account, *, sales_management: bool) -> dict[str, Any]:
    """Who decides an EMEA Enterprise request on this account and who is informed:
    {"sales_management", "deciders" (the sales managers covering the account's region),
    "informed" (the TAM's managers)}; one query (the two lists as one UNION), none for
    other accounts (their TAM's manager decides, as the panel already says)."""
    if not sales_management:
        return {"sales_management": False, "deciders": [], "informed": []}
    fields = ("role", "username", "first_name", "last_name")
    # UNION, not UNION ALL: a manager in two of the TAM's teams is named once.
    people = (
        User.objects.filter(
            sales_manager__regions=account.region_id, groups__name=GROUP_SALES_MANAGEMENT
        )
        .annotate(role=Value("decides"))
        .values_list(*fields)
    )
    if account.tam_id:
        managers = User.objects.filter(managed_teams__tams=account.tam_id)
        people = people.union(managers.annotate(role=Value("informed")).values_list(*fields))
    named: dict[str, list[str]] = {"decides": [], "informed": []}
    for role, username, first, last in sorted(people, key=lambda row: row[1]):
        # As User.get_full_name(), else the username.
        named[role].append(f"{first} {last}".strip() or username)
    return {"sales_management": True, "deciders": named["decides"], "informed": named["informed"]}


# --- Balance per TAM ---------------------------------------------------------------------------


@dataclass(frozen=True)
class P1Balance:
    tam_id: int
    tam_name: str
    model: str
    accounts: int  # TAM-assigned accounts at P1 or P2 under this model
    p1: int
    share: float
    target: str
    in_range: bool

    @property
    def warning(self) -> bool:
        return not self.in_range


def _target(ruleset: RuleSet, p1: int, total: int) -> tuple[str, bool]:
    if ruleset.p1_target_min is not None or ruleset.p1_target_max is not None:
        low = ruleset.p1_target_min or 0
        high = ruleset.p1_target_max
        text = f"{low}-{high} P1" if high is not None else f"at least {low} P1"
        return text, p1 >= low and (high is None or p1 <= high)
    if ruleset.p1_target_share is not None and total:
        share, tol = ruleset.p1_target_share, ruleset.p1_share_tolerance
        lowest, highest = max(Decimal(0), share - tol), min(Decimal(1), share + tol)
        text = f"about {share:.0%} at P1 ({lowest:.0%}-{highest:.0%})"
        return text, lowest <= Decimal(p1) / Decimal(total) <= highest
    return "no target", True


def p1_balance(tams: Iterable[User] | QuerySet) -> list[P1Balance]:
    """Share of P1 per TAM against the target of the model their accounts use (US about
    1/3 of the book, EMEA 5-8 P1 accounts); `in_range` False means show a warning. One row
    per TAM and model (a TAM with books in two models gets two rows)."""
    tams = list(tams)
    names = {t.pk: (t.get_full_name() or t.get_username()) for t in tams}
    rulesets = {(rs.region_id, rs.segment): rs for rs in RuleSet.objects.all()}
    rows = (
        Account.objects.filter(tam_id__in=list(names), priority__in=[1, 2])
        .values("tam_id", "region_id", "segment")
        .annotate(total=Count("id"), p1=Count("id", filter=Q(priority=1)))
        .order_by()
    )
    per: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    ruleset_of: dict[tuple[int, str], RuleSet] = {}
    for row in rows:
        ruleset = rulesets.get((row["region_id"], row["segment"]))
        if ruleset is None:
            continue
        key = (row["tam_id"], ruleset.model)
        per[key][0] += row["total"]
        per[key][1] += row["p1"]
        ruleset_of.setdefault(key, ruleset)
    out = []
    for (tam_id, model), (total, p1) in sorted(per.items(), key=lambda kv: names[kv[0][0]]):
        target, in_range = _target(ruleset_of[(tam_id, model)], p1, total)
        out.append(
            P1Balance(
                tam_id=tam_id,
                tam_name=names[tam_id],
                model=model,
                accounts=total,
                p1=p1,
                share=p1 / total if total else 0.0,
                target=target,
                in_range=in_range,
            )
        )
    return out


# --- Changes -------------------------------------------------------------------------------


def _quarterly_reviews() -> QuerySet[PriorityReview]:
    return PriorityReview.objects.filter(
        cause=ReviewCause.QUARTERLY_REVIEW, dry_run=False, finished_at__isnull=False
    ).order_by("-started_at")


def changes_for_tam(user: User, since: dt.datetime | None = None) -> QuerySet[PriorityDecision]:
    """Priority changes on the TAM's accounts since `since` (default: the start of the
    latest quarterly review, read in the same query; none before the first review),
    newest first: their "what changed" list."""
    start: dt.datetime | Subquery = (
        since if since is not None else Subquery(_quarterly_reviews().values("started_at")[:1])
    )
    return (
        PriorityDecision.objects.filter(account__tam=user, decided_at__gte=start)
        .exclude(previous_priority=F("priority"))
        .select_related("account", "actor")
        .order_by("-decided_at", "-id")
    )


def priorities_overview_lists(
    user: User,
    *,
    keys: tuple[str, ...] = ("pending", "changes"),
    show: str = "",
    page: int = 1,
) -> dict[str, Capped]:
    """The bounded lists of the priorities pages and the team view: `pending` (the
    requests waiting for the user, oldest first) and `changes` (changes on the user's
    accounts since the latest quarterly review, newest first). Each is its first
    `SECTION_ROWS` rows or, when `show` names it, page `page` of `PAGE_ROWS`, with a count
    capped at `COUNT_CAP`. One query for the counts, one per list."""
    readers: dict[str, Callable[[User], QuerySet]] = {
        "pending": pending_exceptions_for_manager,
        "changes": changes_for_tam,
    }
    lists = {key: readers[key](user) for key in keys}
    counts = capped_counts(lists)
    return {key: capped(key, qs, counts[key], show=show, page=page) for key, qs in lists.items()}


# --- What-if -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    account_id: int
    name: str
    salesforce_id: str
    before: int
    after: int
    before_rule: str
    after_rule: str


@dataclass(frozen=True)
class WhatIf:
    evaluated: int
    p1_to_p2: list[Move]
    p2_to_p1: list[Move]
    other: list[Move]


def ruleset_whatif(
    *, edited: RuleSet, as_of: dt.date | None = None, account_ids: Iterable[int] | None = None
) -> WhatIf:
    """How the accounts of this rule set's region and segment would move if `edited`
    (unsaved values) replaced the stored rule set: both evaluated with the pure rules over
    the current facts, so unrelated drift does not show as a move. `account_ids` limits it
    to a selection (the accounts table's bulk what-if); ranks stay the whole population's."""
    as_of = as_of or timezone.localdate()
    stored = RuleSet.objects.get(pk=edited.pk)
    old_mapping = model_mapping(RuleSet.objects.all())
    new_mapping = {**old_mapping, (edited.region_id, edited.segment): edited.model}
    scope = Account.objects.filter(region_id=edited.region_id, segment=edited.segment)
    if account_ids is not None:
        scope = scope.filter(pk__in=list(account_ids))
    ids = list(scope.order_by("pk").values_list("pk", flat=True))
    old_params, new_params = stored.params(), edited.params()
    new_ranks = arr_ranks(new_mapping, ids) if new_mapping != old_mapping else None
    p1_to_p2, p2_to_p1, other = [], [], []
    for row, facts in build_facts(ids, as_of=as_of, mapping=old_mapping):
        before = evaluate(facts, old_params)
        if new_ranks is not None:
            facts = replace(facts, arr_rank=new_ranks.get(row.id))
        after = evaluate(facts, new_params)
        if before.priority == after.priority:
            continue
        move = Move(
            row.id,
            row.name,
            row.salesforce_id,
            before.priority,
            after.priority,
            before.decided_by,
            after.decided_by,
        )
        if (before.priority, after.priority) == (1, 2):
            p1_to_p2.append(move)
        elif (before.priority, after.priority) == (2, 1):
            p2_to_p1.append(move)
        else:
            other.append(move)
    return WhatIf(len(ids), p1_to_p2, p2_to_p1, other)


# --- The account panel ------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowStep:
    rule: str
    question: str
    answer: bool | None  # None: not asked (the flow stopped earlier)
    evidence: str
    decisive: bool


def priority_flow(decision: PriorityDecision | None, ruleset: RuleSet | None) -> list[FlowStep]:
    """The model's questions in order (the US flowchart for us_enterprise) with the stored
    decision's answers; questions after the deciding one are "not asked"."""
    model = decision.model if decision else (ruleset.model if ruleset else None)
    if model is None:
        return []
    params = ruleset.params() if ruleset else Params(model=model)
    asked = {step["rule"]: step for step in (decision.trace if decision else [])}
    out = []
    for rule in FLOWS["pre"] + FLOWS[model]:
        step = asked.get(rule)
        out.append(
            FlowStep(
                rule=rule,
                question=step["question"] if step else RULES[rule].question_for(params),
                answer=step["answer"] if step else None,
                evidence=step["evidence"] if step else "",
                decisive=bool(decision and decision.decided_by == rule),
            )
        )
    return out


def account_priority_panel(user: User, account: Account) -> dict[str, Any]:
    """Context of templates/prioritization/account.html#panel (fixed number of queries)."""
    ruleset = ruleset_of(account)
    decision = decision_for_account(account)
    exceptions = list(exceptions_for_account(account))
    return {
        "account": account,
        "ruleset": ruleset,
        "decision": decision,
        "flow": priority_flow(decision, ruleset),
        "expectations": expectations_under(account, ruleset),
        "exceptions": exceptions,
        "pending_exception": next((e for e in exceptions if e.status == "pending"), None),
        "is_emea_proposal": bool(ruleset and ruleset.model == "emea_enterprise"),
        # Who decides a request on this account and who is informed (EMEA Enterprise:
        # the region's Sales Management decides, the TAM's manager is informed).
        "exception_people": exception_people(
            account, sales_management=bool(ruleset and ruleset.model == "emea_enterprise")
        ),
    }
