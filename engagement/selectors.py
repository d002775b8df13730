"""Reads of the engagement lifecycle. Each function runs a fixed number of queries,
whatever the size of the account or the book. Callers scope accounts with
`portfolio.selectors.accounts_for_user` first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from engagement import rules
from engagement.cadence import with_cadence
from engagement.models import (
    CustomerIssue,
    Disengagement,
    Engagement,
    EngagementStep,
    SuccessObjective,
    SuccessTask,
)
from integrations import gitlab as gl
from portfolio.models import (
    Account,
    Activity,
    ActivityKind,
    Contact,
    Health,
    Opportunity,
    Persona,
    SuccessPlan,
)
from prioritization.selectors import expectations_under, ruleset_of
from triage.models import HealthSignals

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class PanelFacts(TypedDict):
    """What `with_panel_facts` annotates on each account (for mypy: `WithAnnotations`)."""

    panel_facts_at: dt.datetime
    has_won_opportunity: bool
    downgrading_or_cancelling: bool
    last_call: dt.datetime | None
    last_ebr: dt.datetime | None
    ebrs_12_months: int


class ContactShown(TypedDict):
    """What the panel sets on each contact it lists, for the template and the forms."""

    persona_keys: list[str]
    persona_labels: list[str]


class IssueShown(TypedDict):
    """What the panel sets on each open customer issue, for the template."""

    slow: bool
    waiting: dt.timedelta


# --- Engagement expectations (cadence, EBRs, success plan) --------------------------------


def expectations_for(account: Account) -> dict[str, Any]:
    """What the TAM owes the account at its priority: the rule set's engagement
    expectations (`prioritization.selectors.engagement_expectations_for`), with the
    handbook's defaults where the rule set gives no cadence, plus what Portfolio checks of
    them (one query): the cadence in days (sooner while onboarding, from the rule set's
    `onboarding_cadence_days`), the EBR minimum over the last 12 months and whether it is
    Portfolio's reading, whether a P1 needs a fully green success plan."""
    # The rule set is read once (`engagement_expectations_for` would read it again).
    ruleset = ruleset_of(account)
    out = dict(expectations_under(account, ruleset))
    priority = account.priority or 0
    out["cadence_source"] = out.get("ruleset") or ""
    if not out.get("cadence_days") and priority in rules.DEFAULT_CADENCE_DAYS:
        out["cadence_days"] = rules.DEFAULT_CADENCE_DAYS[priority]
        out["cadence_source"] = "handbook default"
    onboarding = account.onboarding_started is not None and account.onboarding_completed is None
    onboarding_days = ruleset.onboarding_cadence_days if ruleset is not None else None
    out["priority_cadence_days"] = out["cadence_days"]
    out["in_onboarding"] = onboarding
    out["cadence_days"] = rules.expected_cadence_days(
        cadence_days=out["cadence_days"],
        onboarding_cadence_days=onboarding_days,
        onboarding=onboarding,
    )
    out["onboarding_cadence"] = bool(
        onboarding and out["cadence_days"] and out["cadence_days"] != out["priority_cadence_days"]
    )
    if priority not in (1, 2):
        out.update(ebrs_min_per_year=None, ebrs_reading="")
    elif ruleset is None:
        out["ebrs_min_per_year"] = rules.DEFAULT_EBRS_MIN_PER_YEAR.get(priority)
        out["ebrs_reading"] = rules.DEFAULT_EBRS_READING
    else:
        out["ebrs_min_per_year"] = getattr(ruleset, f"p{priority}_ebrs_min_per_year")
        out["ebrs_reading"] = ruleset.ebrs_reading if out["ebrs_min_per_year"] else ""
    out["full_plan_required"] = bool(
        priority == 1 and ruleset is not None and ruleset.p1_full_success_plan_required
    )
    return out


def overdue_cadence_for_tams(
    tams: Iterable[User] | QuerySet, *, now: dt.datetime | None = None
) -> dict[int, int]:
    """Overdue cadence calls per TAM id (0 for a TAM with none), for the dashboard and the
    team view. One query whatever the number of TAMs and accounts; the cadence is
    `engagement.cadence.with_cadence`'s."""
    now = now or timezone.now()
    ids = [t.pk for t in tams]
    rows = (
        with_cadence(Account.objects.filter(tam_id__in=ids), now=now)
        .filter(cadence_overdue=True)
        .order_by()
        .values("tam_id")
        .annotate(n=Count("pk"))
    )
    counts = {pk: 0 for pk in ids}
    counts.update({row["tam_id"]: row["n"] for row in rows})
    return counts


# --- The account panel --------------------------------------------------------------------

# The most contacts the panel lists (and so the most its forms take from the list).
CONTACTS_SHOWN = 200


def account_engagement_panel(account: Account, *, now: dt.datetime | None = None) -> dict:
    """Everything the engagement panel of one account shows, in a fixed number of queries
    (about 12): the open engagement and its checklist, the collaboration project, cadence
    and EBRs, the success plan, personas, the customer's open issues, disengagement, the
    E-Group brief facts. `account` should come with `tam`, `owner` and `region` loaded,
    and may come `with_panel_facts` (then as of when they were read)."""
    now = now or getattr(account, "panel_facts_at", None) or timezone.now()
    engagement = (
        Engagement.objects.filter(account=account)
        .select_related("started_by")
        .prefetch_related(
            Prefetch("steps", queryset=EngagementStep.objects.select_related("done_by"))
        )
        .order_by("ended_at", "-started_at")  # the open one (NULL ended_at) first
        .first()
    )
    if engagement is not None and engagement.ended_at is not None:
        engagement = None
    facts = _account_facts(account, now)
    project = _one_to_one(facts, "collaboration_project")
    has_won = facts.has_won_opportunity
    expectations = expectations_for(account)
    cadence = _cadence(account, expectations, now, facts=facts)
    objectives = list(
        SuccessObjective.objects.filter(account=account).prefetch_related(
            Prefetch("tasks", queryset=SuccessTask.objects.order_by("created_at", "id"))
        )
    )
    # The display attributes are set just below (ContactShown, IssueShown).
    contacts = cast(
        "list[WithAnnotations[Contact, ContactShown]]",
        list(
            Contact.objects.filter(account=account)
            .prefetch_related("personas")
            .order_by("name")[:CONTACTS_SHOWN]
        ),
    )
    for contact in contacts:
        contact.persona_keys = [p.key for p in contact.personas.all()]
        contact.persona_labels = [str(p) for p in contact.personas.all()]
    present = {key for c in contacts for key in c.persona_keys}
    missing = rules.missing_personas(present)
    issues = cast(
        "list[WithAnnotations[CustomerIssue, IssueShown]]",
        list(CustomerIssue.objects.filter(account=account)),
    )
    for issue in issues:
        issue.slow = issue.awaiting_answer and now - issue.waiting_since > dt.timedelta(
            days=rules.SLOW_RESPONSE_DAYS
        )
        issue.waiting = now - issue.waiting_since
    disengagement = (
        Disengagement.objects.filter(account=account).select_related("previous_tam").first()
    )
    brief = _one_to_one(facts, "egroup_brief")
    threshold = settings.TAM_ALIGNMENT_THRESHOLD_USD.get(account.segment)
    arr = float(account.arr or Decimal(0))
    # "A customer downgrades or churns": what the TAM recorded as "They've told us they
    # are downgrading/cancelling" (rules.below_alignment_threshold); asked only of an
    # account below the threshold, where it matters.
    downgrading = threshold is not None and arr < threshold and facts.downgrading_or_cancelling
    objective_facts = [
        rules.ObjectiveFacts(status=o.status, task_count=len(o.tasks.all())) for o in objectives
    ]
    derived_plan = rules.success_plan_state(objective_facts)
    panel = {
        "account": account,
        "now": now,
        "engagement": engagement,
        "steps": list(engagement.steps.all()) if engagement else [],
        "project": project,
        "has_won_opportunity": has_won,
        "gitlab_enabled": gl.is_enabled(),
        "expectations": expectations,
        "cadence": cadence,
        "objectives": objectives,
        "success_plan_state": derived_plan,
        "success_plan_label": SuccessPlan(derived_plan).label,
        "success_plan_gap": rules.success_plan_gap(
            priority=account.priority,
            full_plan_required=expectations["full_plan_required"],
            state=derived_plan,
        ),
        "green_objectives": sum(1 for o in objectives if o.status == "green"),
        "contacts": contacts,
        "persona_contacts": [c for c in contacts if c.persona_keys],
        "missing_personas": [_persona_label(p) for p in missing],
        "personas_flagged": bool(missing),
        "customer_issues": issues,
        "slow_issue_count": sum(1 for i in issues if i.slow),
        "disengagement": disengagement,
        "alignment_threshold": threshold,
        "downgrading_or_cancelling": downgrading,
        "below_alignment_threshold": rules.below_alignment_threshold(
            arr=arr,
            threshold=threshold,
            downgrades_or_churns=downgrading,
        ),
        "brief": brief,
    }
    panel["open_risks"] = _open_risks(account, panel)
    return panel


def _persona_label(key: str) -> str:
    return Persona(key).label


def with_panel_facts(
    accounts: QuerySet[Account], now: dt.datetime
) -> QuerySet[WithAnnotations[Account, PanelFacts]]:
    """The accounts with the panel's one-row facts, read in the same query: the
    collaboration project and E-Group brief (one per account), whether it has a won
    opportunity, whether the TAM recorded "downgrading/cancelling", and the cadence
    figures `_cadence` shows (the last cadence call and EBR held, EBRs held over the last
    12 months), as of `now` (kept as `panel_facts_at`). A view that reads the account to
    show the panel (and writes nothing before) reads them with it; the panel reads them
    itself otherwise."""
    held = Q(outcome__in=rules.HELD_OUTCOMES)
    window_start = now - dt.timedelta(days=rules.EBR_WINDOW_DAYS)
    activities = (
        Activity.objects.filter(
            account=OuterRef("pk"), kind__in=[ActivityKind.CADENCE_CALL, ActivityKind.EBR]
        )
        .order_by()
        .values("account")
    )

    def of_activities(aggregate) -> Subquery:
        return Subquery(activities.annotate(value=aggregate).values("value")[:1])

    return accounts.select_related("collaboration_project", "egroup_brief").annotate(
        panel_facts_at=Value(now, output_field=DateTimeField()),
        has_won_opportunity=Exists(Opportunity.objects.filter(account=OuterRef("pk"), is_won=True)),
        downgrading_or_cancelling=Exists(
            HealthSignals.objects.filter(account=OuterRef("pk"), downgrading_or_cancelling=True)
        ),
        last_call=of_activities(
            Max("occurred_at", filter=Q(kind=ActivityKind.CADENCE_CALL) & held)
        ),
        last_ebr=of_activities(Max("occurred_at", filter=Q(kind=ActivityKind.EBR) & held)),
        ebrs_12_months=Coalesce(
            of_activities(
                Count("pk", filter=Q(kind=ActivityKind.EBR, occurred_at__gte=window_start) & held)
            ),
            0,
        ),
    )


def _account_facts(account: Account, now: dt.datetime) -> WithAnnotations[Account, PanelFacts]:
    """`account` with the panel's facts (`with_panel_facts`): itself when it was read with
    them, else one query."""
    if getattr(account, "panel_facts_at", None) is not None:
        return cast("WithAnnotations[Account, PanelFacts]", account)
    return with_panel_facts(Account.objects.filter(pk=account.pk), now).get()


def _one_to_one(account: Account, name: str) -> Any:
    """The row of a one-to-one relation read with the account, or None."""
    try:
        return getattr(account, name)
    except ObjectDoesNotExist:
        return None


def _cadence(
    account: Account,
    expectations: dict,
    now: dt.datetime,
    *,
    facts: WithAnnotations[Account, PanelFacts],
) -> dict:
    """The last cadence call held (a missed or rescheduled one leaves the call owed) and
    the EBRs held over the last 12 months (`rules.EBR_WINDOW_DAYS`, as the health signal
    counts them), from `_account_facts`."""
    status = rules.cadence_status(
        cadence_days=expectations.get("cadence_days"), last_call=facts.last_call, now=now
    )
    recent = list(
        Activity.objects.filter(
            account=account, kind__in=[ActivityKind.CADENCE_CALL, ActivityKind.EBR]
        )
        .select_related("user")
        .order_by("-occurred_at")[:5]
    )
    minimum = expectations.get("ebrs_min_per_year")
    return {
        "status": status,
        "last_ebr": facts.last_ebr,
        "ebrs_12_months": facts.ebrs_12_months,
        "ebrs_min_per_year": minimum,
        "ebrs_behind": rules.ebrs_behind(held=facts.ebrs_12_months, minimum=minimum),
        "recent": recent,
    }


RENEWAL_SOON_DAYS = 90


def _open_risks(account: Account, panel: dict) -> list[str]:
    """The risks the E-Group brief lists, from what Portfolio knows of the account."""
    risks = []
    if account.health in (Health.AMBER, Health.RED):
        risks.append(f"Health is {account.get_health_display()} (at risk)")
    if account.churn_risk:
        risks.append("At risk of contraction or churn")
    status = panel["cadence"]["status"]
    if status.overdue:
        risks.append(
            "Cadence call overdue"
            + (f" (last {status.last:%d %b %Y})" if status.last else " (none logged)")
        )
    if panel["slow_issue_count"]:
        risks.append(f"{panel['slow_issue_count']} customer question(s) waiting for an answer")
    if panel["personas_flagged"]:
        risks.append("No contact for: " + ", ".join(panel["missing_personas"]))
    if panel["success_plan_state"] == "none":
        risks.append("No success plan objectives captured")
    if account.renewal_date:
        days = (account.renewal_date - panel["now"].date()).days
        if 0 <= days <= RENEWAL_SOON_DAYS:
            risks.append(f"Renewal on {account.renewal_date:%d %b %Y} (in {days} days)")
        elif days < 0:
            risks.append(f"Renewal date {account.renewal_date:%d %b %Y} has passed")
    return risks


# --- Collaboration projects ---------------------------------------------------------------


def account_has_won_opportunity(account_id: int) -> bool:
    """ "Until the account becomes a paying customer the project remains in pre-sales"
    (tam-account-engagement.md): a won opportunity marks a paying customer."""
    return Opportunity.objects.filter(account_id=account_id, is_won=True).exists()
