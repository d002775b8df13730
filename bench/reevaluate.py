"""Benchmark: the full quarterly re-evaluation of 100,000 accounts against the baseline of
writing the same number of decision rows with COPY, in the same run.

    .venv/bin/python bench/reevaluate.py [--accounts 100000]

Uses the PostgreSQL server of DATABASE_URL (default 127.0.0.1:5432), in a scratch
database of its own (test_<name>_bench_reevaluate, migrated, dropped at the end). Prints
both times and the ratio; the aim is under 5x the baseline and under 60 s
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ["TEST_DB_SUFFIX"] = "bench_reevaluate"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
SEGMENTS = ["enterprise", "enterprise", "commercial", "public_sector"]
AS_OF = dt.date(2026, 11, 1)


def generate(n: int, seed: int = 7) -> None:
    from portfolio.models import Account, Opportunity

    rng = random.Random(seed)
    User = get_user_model()
    tams = User.objects.bulk_create(
        [User(username=f"bench-tam{i}", email=f"bench-tam{i}@example.com") for i in range(400)]
    )
    batch: list[Account] = []
    for i in range(n):
        started = AS_OF - dt.timedelta(days=rng.randint(0, 1500))
        completed = None if rng.random() < 0.05 else started + dt.timedelta(days=60)
        batch.append(
            Account(
                salesforce_id=f"001B{i:014d}",
                name=f"Bench account {i}",
                arr=Decimal(rng.randint(5_000, 3_000_000)),
                region_id=rng.choice(REGIONS),
                segment=rng.choice(SEGMENTS),
                tam=None if rng.random() < 0.03 else rng.choice(tams),
                parent_salesforce_id=f"001P{i:014d}" if rng.random() < 0.03 else "",
                digital_only=rng.random() < 0.02,
                onboarding_started=started,
                onboarding_completed=completed,
                stages_adopted=rng.randint(0, 8),
                success_plan=rng.choice(["none", "objectives", "full"]),
                stage_adoption_hours_per_week=Decimal(rng.choice([0, 0, 0, 1, 3])),
                infrastructure_change_hours_per_week=Decimal(rng.choice([0, 0, 0, 2, 4])),
                churn_risk=rng.random() < 0.08,
                health=rng.choice(["green", "green", "yellow", "amber", "red"]),
                critical_project=rng.random() < 0.05,
                key_logo=rng.random() < 0.03,
                nps=rng.choice([None, -20, 0, 30, 50]),
                org_change=rng.random() < 0.05,
                expansion_play=rng.random() < 0.1,
                lam=rng.choice([None, 500, 2000]),
                licensed_seats=rng.choice([None, 300, 1000, 2500]),
            )
        )
        if len(batch) == 5000:
            Account.objects.bulk_create(batch)
            batch = []
    if batch:
        Account.objects.bulk_create(batch)
    ids = list(Account.objects.values_list("pk", "salesforce_id"))
    opps = [
        Opportunity(
            salesforce_id=f"006B{i:014d}",
            account_id=pk,
            account_salesforce_id=sfid,
            name="Up-tier",
            type="Up-tier",
            close_date=AS_OF + dt.timedelta(days=rng.randint(-30, 400)),
        )
        for i, (pk, sfid) in enumerate(rng.sample(ids, n // 5))
    ]
    Opportunity.objects.bulk_create(opps, batch_size=5000)


def copy_baseline(n: int) -> float:
    """COPY n decision rows shaped like the real ones (their traces) into the decisions
    table itself (same indexes and foreign keys), committed; deleted afterwards."""
    from django.db import transaction

    from prioritization.models import PriorityDecision

    sample = list(
        PriorityDecision.objects.values_list(
            "account_id", "priority", "model", "ruleset_version_id", "decided_by", "trace"
        )[:1000]
    )
    now = timezone.now()
    rows = []
    for i in range(n):
        account_id, priority, model, version_id, decided_by, trace = sample[i % len(sample)]
        rows.append(
            (
                account_id,
                priority,
                None,
                model,
                version_id,
                decided_by,
                json.dumps(trace),
                "quarterly_review",
                None,
                None,
                None,
                now,
            )
        )
    table = PriorityDecision._meta.db_table
    columns = (
        "account_id, priority, previous_priority, model, ruleset_version_id, decided_by, trace, "
        "cause, actor_id, review_id, exception_id, decided_at"
    )
    with connection.cursor() as cursor:
        started = time.monotonic()
        # Committed, like the re-evaluation's writes.
        sql = f"COPY {table} ({columns}) FROM STDIN"
        with transaction.atomic(), cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.monotonic() - started
        cursor.execute(f"DELETE FROM {table} WHERE review_id IS NULL")  # noqa: S608
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()

    creation = connection.creation
    original_name = connection.settings_dict["NAME"]
    creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from django.db.models import Case, Value, When

        from portfolio.models import Account
        from prioritization.models import PriorityDecision
        from prioritization.services import priorities_reevaluate

        t0 = time.monotonic()
        generate(args.accounts)
        print(f"generated {args.accounts:,} accounts in {time.monotonic() - t0:.1f} s")

        first = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
        decisions = PriorityDecision.objects.count()
        second = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
        # A typical quarter: the TAMs changed the facts of one account in ten.
        sample = random.Random(11).sample(
            list(Account.objects.values_list("pk", flat=True)), args.accounts // 10
        )
        Account.objects.filter(pk__in=sample).update(
            churn_risk=Case(When(churn_risk=True, then=Value(False)), default=Value(True))
        )
        third = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF)
        baseline = copy_baseline(decisions)
        ratio = first.seconds / baseline

        def phases(r) -> str:
            return ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())

        print(first.summary())
        print(
            f"re-evaluation, first run ({decisions:,} decisions written, every account changed): "
            f"{first.seconds:.2f} s ({phases(first)})"
        )
        print(f"re-evaluation, nothing changed: {second.seconds:.2f} s ({phases(second)})")
        print(
            f"re-evaluation, a typical quarter ({third.changed:,} priorities changed): "
            f"{third.seconds:.2f} s ({phases(third)})"
        )
        print(f"COPY baseline ({decisions:,} decision rows): {baseline:.2f} s")
        print(f"ratio (first run / baseline): {ratio:.1f}x (aim < 5x, and < 60 s)")
        return 0 if ratio < 5 and first.seconds < 60 else 1
    finally:
        creation.destroy_test_db(original_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
