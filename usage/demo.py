"""Demo data for the usage app (called by `manage.py load_demo` after the triage demo).

Thirteen months of product usage per TAM-assigned account, deterministic (random.Random
seeded per account) and shaped by the account's colour, so the colours the demo shows are
read from data: green customers use most of their seats, are on the latest major release,
use nine or ten stages and try new features; amber and red ones use under half their seats,
are two majors behind and raise more than 15 tickets a month; yellow ones sit between, one
major behind, and one in four lost a third of its active users last month (the amber
"adoption dropped" early warning). The TAM's own adoption, releases and tickets answers
are cleared where usage now says it, except on one account in ten, where the TAM's answer
is kept and wins (the trace shows both). Idempotent: the import stores by (account,
period, metric), so a rerun adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from django.utils import timezone

from portfolio.models import Account, Health
from triage.models import HealthSignals
from triage.services.assessments import health_assess
from usage import services
from usage.models import Release
from usage.selectors import month_start

MONTHS = 13
RELEASES = (
    ("15.0", dt.date(2022, 5, 22)),
    ("16.0", dt.date(2023, 5, 18)),
    ("17.0", dt.date(2024, 5, 16)),
    ("18.0", dt.date(2025, 5, 15)),
    ("19.0", dt.date(2026, 5, 21)),
)
STAGES = (
    "plan", "create", "verify", "package", "secure", "release", "configure", "monitor",
    "govern", "manage",
)  # fmt: skip
# colour -> (adoption range, majors behind, tickets range, stages range, new features range)
PROFILES = {
    Health.GREEN: ((0.74, 0.92), (0, 0), (1, 5), (9, 10), (2, 5)),
    Health.YELLOW: ((0.55, 0.68), (1, 1), (6, 13), (4, 7), (0, 1)),
    Health.AMBER: ((0.28, 0.46), (2, 2), (16, 24), (2, 4), (0, 0)),
    Health.RED: ((0.18, 0.40), (2, 3), (14, 28), (1, 3), (0, 0)),
}
CLEARED = ("user_adoption", "major_releases_behind", "tickets_per_month", "full_devops_lifecycle")


def rows_for(account: Account, *, today: dt.date, latest_major: int) -> Iterator[dict]:
    """One account's demo months (also used by bench/usage.py to make realistic rows)."""
    rng = random.Random(f"usage:{account.salesforce_id}")  # nosec B311 # demo data, not security
    colour = account.health if account.health in PROFILES else Health.YELLOW
    (lo, hi), (b_lo, b_hi), tickets, stages, features = PROFILES[colour]
    seats = account.licensed_seats or rng.choice([50, 120, 400, 1000, 2500])
    share = rng.uniform(lo, hi)
    drop = colour == Health.YELLOW and rng.random() < 0.25
    major = latest_major - rng.randint(b_lo, b_hi)
    used = rng.randint(*stages)
    for back in range(MONTHS - 1, -1, -1):
        period = f"{month_start(today, back):%Y-%m}"
        # Adoption drifts up over the year towards its level; a drop hits the last month.
        level = share * (0.85 + 0.15 * (MONTHS - back) / MONTHS) * rng.uniform(0.97, 1.03)
        if drop and back == 0:
            level *= 0.6
        active = max(1, min(seats, round(seats * level)))
        minor = max(0, 11 - back) if back <= 11 else 0
        sfid = account.salesforce_id
        yield {"account": sfid, "period": period, "metric": "licensed_seats", "value": seats}
        yield {"account": sfid, "period": period, "metric": "active_users", "value": active}
        yield {"account": sfid, "period": period, "metric": "version", "value": f"{major}.{minor}"}
        yield {
            "account": sfid,
            "period": period,
            "metric": "stages_in_use",
            "value": list(STAGES[: max(1, used - (1 if back > 6 else 0))]),
        }
        yield {
            "account": sfid,
            "period": period,
            "metric": "tickets_opened",
            "value": rng.randint(*tickets),
        }
        yield {
            "account": sfid,
            "period": period,
            "metric": "new_features_used",
            "value": rng.randint(*features),
        }
        yield {
            "account": sfid,
            "period": period,
            "metric": "ci_pipelines",
            "value": round(active * rng.uniform(8, 30)),
        }


def populate(*, stdout=None) -> None:
    today = timezone.localdate()
    for version, released_on in RELEASES:
        Release.objects.get_or_create(version=version, defaults={"released_on": released_on})
    latest = max(int(v.split(".")[0]) for v, d in RELEASES if d <= today)
    # Only accounts with no usage yet: a rerun adds nothing (their colour may since have
    # been decided by the usage itself, and must not reshape it).
    accounts = list(
        Account.objects.filter(tam__isnull=False, usage_summary__isnull=True)
        .exclude(health="")
        .order_by("pk")
        .only("pk", "salesforce_id", "health", "licensed_seats")
    )
    rows = (
        row for account in accounts for row in rows_for(account, today=today, latest_major=latest)
    )
    staged = (services.staged_from_record(i, r) for i, r in enumerate(rows))
    result = services.usage_import(rows=staged, trigger="demo", assess=False)
    # Usage answers adoption, releases and tickets now; one TAM in ten keeps their answer.
    keep = {a.pk for a in accounts if random.Random(f"usage-tam:{a.salesforce_id}").random() < 0.1}  # nosec B311 # demo data, not security
    HealthSignals.objects.filter(account_id__in=[a.pk for a in accounts]).exclude(
        account_id__in=keep
    ).update(
        user_adoption="",
        major_releases_behind=None,
        tickets_per_month=None,
        full_devops_lifecycle=None,
    )
    if accounts:
        health_assess(account_ids=[a.pk for a in accounts])
    if stdout is not None:
        stdout.write(f"usage.demo: {result.summary()}")
