"""Demo data of the prioritization app, run by `manage.py load_demo` after the core data.

A few exception requests per team (pending, approved, rejected; EMEA Enterprise ones
decided by the EMEA sales manager, `sales1`), then
a quarterly re-evaluation of every demo account so each shows its priority with a trace
and each TAM has a list of changes. Deterministic (random.Random(seed)) and idempotent:
requests are matched by (account, reason), and a second re-evaluation writes nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TextIO

from django.utils import timezone

from portfolio.models import Account, SalesManager, Team
from prioritization.models import PriorityException, PriorityReview, ReviewCause
from prioritization.selectors import addressed_to_sales_management
from prioritization.services import (
    priorities_reevaluate,
    priority_exception_approve,
    priority_exception_reject,
    priority_exception_request,
)

SEED = 4
REASONS = [
    (1, "Large, strategic customer with no LAM: the account team agreed it needs P1."),
    (1, "Risk the model does not see: executive sponsor left, adoption dropping."),
    (2, "Large LAM but no clear and active growth path this quarter."),
    (1, "Customer wants weekly collaboration during their migration."),
]


def _requests_for_team(team: Team, rng: random.Random) -> list[tuple[Account, int, str, str]]:
    """(account, priority, reason, outcome) for one team: pending, approved, rejected."""
    accounts = list(
        Account.objects.filter(tam__in=team.tams.all(), priority__in=[1, 2, None])
        .exclude(parent__isnull=False, tam__isnull=True)
        .order_by("salesforce_id")[:200]
    )
    if len(accounts) < 3:
        return []
    picked = rng.sample(accounts, 3)
    # The EMEA team always shows an EMEA Enterprise proposal (decided by Sales Management),
    # whatever the sample drew.
    emea = [a for a in accounts if (a.region_id, a.segment) == ("EMEA", "enterprise")]
    if emea and not any(a in emea for a in picked):
        picked[0] = rng.choice(emea)
    out = []
    for account, outcome in zip(picked, ("pending", "approved", "rejected"), strict=True):
        priority, reason = rng.choice(REASONS)
        out.append((account, priority, reason, outcome))
    return out


def populate(*, stdout: TextIO | None = None) -> None:
    rng = random.Random(SEED)  # nosec B311 # jitter and demo data, not security
    created = 0
    for team in Team.objects.select_related("manager").order_by("name"):
        for account, priority, reason, outcome in _requests_for_team(team, rng):
            if PriorityException.objects.filter(account=account, reason=reason).exists():
                continue
            if PriorityException.objects.filter(account=account, status="pending").exists():
                continue
            exception = priority_exception_request(
                account=account,
                requested_by=account.tam,
                requested_priority=priority,
                reason=reason,
                expires_on=(
                    timezone.localdate() + dt.timedelta(days=120) if outcome == "approved" else None
                ),
            )
            created += 1
            # EMEA Enterprise: the region's Sales Management decides (the demo's `sales1`
            # covers EMEA); every other request, the TAM's manager.
            decider = team.manager
            if addressed_to_sales_management(exception):
                sales = SalesManager.objects.filter(regions=account.region_id).first()
                if sales is None:
                    continue  # nobody may decide it: it stays pending
                decider = sales.user
            if outcome == "approved":
                priority_exception_approve(
                    exception=exception, manager=decider, note="Agreed in the 1:1."
                )
            elif outcome == "rejected":
                priority_exception_reject(
                    exception=exception, manager=decider, note="The model is right here."
                )
    if PriorityReview.objects.filter(cause=ReviewCause.QUARTERLY_REVIEW).exists():
        summary = "already evaluated"
    else:
        summary = priorities_reevaluate(cause=ReviewCause.QUARTERLY_REVIEW).summary()
    if stdout is not None:
        stdout.write(f"prioritization: {created} exception requests; {summary}\n")
