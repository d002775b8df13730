"""Demo data for the triage app (called by `manage.py load_demo` after the core data).

Deterministic (random.Random seeded per account) and idempotent: signals are created only
where missing, the automatic health run writes only what changed, issues are opened only
for accounts without one, updates and overrides only where none exist yet.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db.models import Exists, OuterRef
from django.utils import timezone

from portfolio.models import Account, Activity, ActivityKind, CallOutcome, Health
from triage import labels as triage_labels
from triage import selectors
from triage.models import (
    CustomerERCall,
    HealthAssessment,
    HealthSignals,
    IssueStatus,
    TriageIssue,
    TriageUpdate,
)
from triage.services import assessments
from triage.services.issues import triage_issue_open

UPDATES = [
    "Met the champion's replacement; agreed a weekly sync until renewal.",
    "Escalated the two blocking bugs to product; PM joined the triage team.",
    "Ran an adoption workshop for the platform team (40 attendees).",
    "Exec sponsor call booked with our RD for next Tuesday.",
    "Shared the upgrade plan; they aim to be current by end of quarter.",
]


def _signals_for(colour: str, rng: random.Random) -> dict:
    """TAM-entered signals that read as `colour` (the Salesforce health of the demo)."""
    if colour == Health.RED:
        flag = rng.choice(
            ["downgrading_or_cancelling", "no_communication", "no_executive_sponsor_access"]
        )
        return {flag: True, "user_adoption": "low", "champion_lost": rng.random() < 0.5}
    if colour == Health.AMBER:
        return {
            "user_adoption": "low",
            "champion_lost": True,
            "tickets_per_month": rng.choice([12, 18, 22]),
            "major_releases_behind": rng.choice([2, 3]),
        }
    if colour == Health.YELLOW:
        return {
            "use_cases": "not_defined",
            "stakeholders": 1,
            "major_releases_behind": 1,
            "interested_in_upgrading": rng.random() < 0.5,
        }
    return {
        "use_cases": "achieved",
        "full_devops_lifecycle": True,
        "regular_feedback": rng.random() < 0.7,
        "user_adoption": "healthy",
        "major_releases_behind": rng.choice([0, 1]),
    }


def _call_outcomes(assigned: list[Account], now: dt.datetime) -> None:
    """Record what happened to the demo's recent cadence calls (the attendance signal reads
    only recorded outcomes), matching the account's colour: green customers attended every
    call, yellow ones came late once, amber and red ones missed two calls (some missed
    calls in the demo). Only calls with no outcome yet are touched: a rerun changes
    nothing."""
    colour = {a.pk: a.health for a in assigned}
    calls = list(
        Activity.objects.filter(
            account_id__in=list(colour),
            kind=ActivityKind.CADENCE_CALL,
            outcome="",
            occurred_at__gte=now - dt.timedelta(days=selectors.CADENCE_WINDOW_DAYS),
        )
        .order_by("account_id", "-occurred_at")
        .only("pk", "account_id", "outcome")
    )
    seen: dict[int, int] = {}
    for call in calls:
        n = seen[call.account_id] = seen.get(call.account_id, 0) + 1
        health = colour[call.account_id]
        call.outcome = CallOutcome.HELD
        if health in (Health.AMBER, Health.RED) and n in (2, 4):
            call.outcome = CallOutcome.MISSED
        elif health == Health.YELLOW and n == 2:
            call.outcome = CallOutcome.LATE
    Activity.objects.bulk_update(calls, ["outcome"], batch_size=2000)


def populate(*, stdout=None) -> None:
    now = timezone.now()
    assigned = list(
        Account.objects.filter(tam__isnull=False)
        .exclude(health="")
        .order_by("pk")
        .only("pk", "salesforce_id", "health")
    )
    _call_outcomes(assigned, now)
    have = set(HealthSignals.objects.values_list("account_id", flat=True))
    HealthSignals.objects.bulk_create(
        [
            HealthSignals(
                account_id=a.pk,
                **_signals_for(a.health, random.Random(f"triage:{a.salesforce_id}")),  # nosec B311 # jitter and demo data, not security
            )
            for a in assigned
            if a.pk not in have
        ],
        ignore_conflicts=True,
    )
    summary = assessments.health_assess(account_ids=[a.pk for a in assigned], now=now)
    # load_demo re-upserts the "Salesforce" health on every run; put back the colour the
    # assessments decided, so a second run opens nothing new.
    decided = dict(
        HealthAssessment.objects.filter(is_current=True, account_id__in=[a.pk for a in assigned])
        .exclude(colour="")
        .values_list("account_id", "colour")
    )
    stale = [a for a in assigned if decided.get(a.pk, a.health) != a.health]
    for account in stale:
        account.health = decided[account.pk]
    Account.objects.bulk_update(stale, ["health"])

    # Every amber/red account is on the board (red ones were opened by the run).
    open_issue = TriageIssue.objects.filter(account=OuterRef("pk"), status=IssueStatus.OPEN)
    missing = Account.objects.filter(
        tam__isnull=False, health__in=[Health.AMBER, Health.RED]
    ).filter(~Exists(open_issue))
    for account in missing.select_related("owner", "region").order_by("pk"):
        triage_issue_open(
            account=account,
            user=None,
            colour=account.health,
            reason=selectors.health_reasons_text(account),
            automatic=True,
        )

    issues = list(
        TriageIssue.objects.filter(status=IssueStatus.OPEN)
        .select_related("account", "account__tam")
        .order_by("pk")
    )
    classify, review = [], []
    for n, issue in enumerate(issues):
        rng = random.Random(f"triage-issue:{issue.account.salesforce_id}")  # nosec B311 # jitter and demo data, not security
        # Leave every tenth red issue unclassified so the five-minute check shows it.
        if issue.colour == Health.RED and not issue.churn_class and n % 10:
            issue.churn_class = rng.choice(triage_labels.CHURN_CLASSES)
            classify.append(issue)
        if issue.is_new and n % 3:
            issue.is_new = False
            review.append(issue)
        if issue.due_date is None:
            issue.due_date = timezone.localdate(now) + dt.timedelta(days=rng.randint(3, 21))
    # Two cards moved on GitLab's board without Salesforce following: the five-minute
    # check lists them with a one-click fix.
    # (Chosen by the account's colour, which the mismatch leaves alone: reruns pick the
    # same two.)
    for issue in [i for i in issues if i.account.health == Health.RED][3:5]:
        issue.colour = Health.AMBER
    TriageIssue.objects.bulk_update(issues, ["churn_class", "is_new", "due_date", "colour"])

    with_updates = set(TriageUpdate.objects.values_list("issue_id", flat=True))
    TriageUpdate.objects.bulk_create(
        [
            TriageUpdate(
                issue=issue,
                author=issue.account.tam,
                created_at=now - dt.timedelta(days=7 * k + 1),
                body=UPDATES[(issue.pk + k) % len(UPDATES)],
            )
            for issue in issues[:40]
            if issue.pk not in with_updates
            for k in range(2)
        ]
    )

    # A few TAM overrides, so "suggested vs chosen" shows on account pages.
    chosen = set(
        HealthAssessment.objects.filter(is_current=True)
        .exclude(chosen_colour="")
        .values_list("account_id", flat=True)
    )
    candidates = [
        a for a in assigned[::97] if a.pk not in chosen and a.health in (Health.YELLOW, "green")
    ][:8]
    for account in Account.objects.filter(pk__in=[a.pk for a in candidates]):
        target = Health.YELLOW if account.health == Health.GREEN else Health.GREEN
        assessments.health_colour_set(
            account=account,
            user=account.tam,
            colour=target,
            reason="Demo: the TAM knows more than the signals say (a mix of art and science).",
            expires_on=timezone.localdate(now) + dt.timedelta(days=60),
        )

    if not CustomerERCall.objects.exists():
        CustomerERCall.objects.create(held_at=now - dt.timedelta(days=7), notes="Demo call")
    if stdout is not None:
        stdout.write(
            f"triage demo: {summary.assessed} accounts assessed, "
            f"{TriageIssue.objects.filter(status=IssueStatus.OPEN).count()} open triage issues"
        )
