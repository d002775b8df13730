"""Benchmark: the full quarterly re-evaluation against the baseline of writing the same
number of decision rows with COPY, in the same run.

    .venv/bin/python bench/reevaluate.py [--accounts 1000000] [--rounds 3] [--db-prefix P] [--keep]

Uses the PostgreSQL server of DATABASE_URL, in a scratch database of its own
(<prefix>bench_reevaluate, default test_postgres_bench_reevaluate; migrated, never
serialized, dropped at the end unless --keep). The data are built in SQL (INSERT ... SELECT
over generate_series). Per round, from a book with no decisions: (1) the first run, every
account decided; (2) the baseline, COPY of as many decision rows into the decisions table
(same indexes and foreign keys), committed. Medians over the rounds are compared. Then:
nothing changed; two typical quarters (the churn flag of one account in ten flipped); an
interrupted review carried on. Aims (issue 12): first run < 120 s and <= 3x the baseline
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench._common import (  # noqa: E402
    add_database_arguments,
    analyze,
    insert_select,
    load,
    pick,
    say,
    scratch_database,
)

AS_OF = dt.date(2026, 11, 1)


def generate(n: int) -> None:
    """n accounts (5 regions x enterprise/commercial/public sector, 400 TAMs, 3% unmanaged
    children, 2% digital-only, random facts) and n/5 open up-tier opportunities, set-based."""
    from portfolio.models import Account, Opportunity

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.7)")
    User = get_user_model()
    tams = User.objects.bulk_create(
        [User(username=f"bench-tam{i}", email=f"bench-tam{i}@example.com") for i in range(400)]
    )
    tam_ids = ", ".join(str(t.pk) for t in tams)
    insert_select(
        Account,
        rows=n,
        label="accounts",
        source=(
            "(SELECT i, DATE '" + AS_OF.isoformat() + "' - floor(random() * 1500)::int AS started"
            " FROM generate_series({lo}, {hi}) AS i) g"
        ),
        exprs={
            "salesforce_id": "'001B' || lpad(g.i::text, 14, '0')",
            "name": "'Bench account ' || g.i",
            "arr": "5000 + floor(random() * 2995000)",
            "region_id": pick(["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]),
            "segment": pick(["enterprise", "enterprise", "commercial", "public_sector"]),
            "tam_id": (
                f"CASE WHEN random() < 0.03 THEN NULL "
                f"ELSE (ARRAY[{tam_ids}])[1 + floor(random() * {len(tams)})::int] END"
            ),
            "parent_salesforce_id": (
                "CASE WHEN random() < 0.03 THEN '001P' || lpad(g.i::text, 14, '0') ELSE '' END"
            ),
            "digital_only": "random() < 0.02",
            "onboarding_started": "g.started",
            "onboarding_completed": "CASE WHEN random() < 0.05 THEN NULL ELSE g.started + 60 END",
            "stages_adopted": "floor(random() * 9)::int",
            "success_plan": pick(["none", "objectives", "full"]),
            "stage_adoption_hours_per_week": pick([0, 0, 0, 1, 3]),
            "infrastructure_change_hours_per_week": pick([0, 0, 0, 2, 4]),
            "churn_risk": "random() < 0.08",
            "health": pick(["green", "green", "yellow", "amber", "red"]),
            "critical_project": "random() < 0.05",
            "key_logo": "random() < 0.03",
            "nps": pick([None, -20, 0, 30, 50], "::int[]"),
            "org_change": "random() < 0.05",
            "expansion_play": "random() < 0.1",
            "lam": pick([None, 500, 2000], "::int[]"),
            "licensed_seats": pick([None, 300, 1000, 2500], "::int[]"),
        },
    )
    insert_select(
        Opportunity,
        rows=n,
        chunk=n,
        label="up-tier opportunities (1 in 5 accounts)",
        source=(
            "(SELECT id AS account_id, salesforce_id AS account_sfid, id AS i"
            " FROM portfolio_account WHERE random() < 0.2 AND id BETWEEN {lo} AND {hi}) g"
        ),
        exprs={
            "salesforce_id": "'006B' || lpad(g.i::text, 14, '0')",
            "account_id": "g.account_id",
            "account_salesforce_id": "g.account_sfid",
            "name": "'Up-tier'",
            "type": "'Up-tier'",
            "close_date": "DATE '" + AS_OF.isoformat() + "' - 30 + floor(random() * 430)::int",
        },
    )
    analyze()


def reset() -> None:
    """Back to a book with no decisions (for the next round's first run)."""
    from pgtrigger import ignore

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE prioritization_prioritydecision, prioritization_priorityreview, "
            "portfolio_accountevent, pghistory_context CASCADE"
        )
        with transaction.atomic(), ignore("portfolio.Account:update_update"):
            cursor.execute(
                "UPDATE portfolio_account SET priority = NULL, priority_decision_id = NULL "
                "WHERE priority IS NOT NULL OR priority_decision_id IS NOT NULL"
            )
    analyze()


def copy_baseline(n: int) -> float:
    """COPY n decision rows shaped like the real ones (their traces) into the decisions
    table itself (same indexes and foreign keys), committed; deleted at the next reset."""
    from prioritization.models import PriorityDecision

    sample = list(
        PriorityDecision.objects.values_list(
            "account_id", "priority", "model", "ruleset_version_id", "decided_by", "trace"
        )[:1000]
    )
    now = timezone.now()
    table = PriorityDecision._meta.db_table
    columns = (
        "account_id, priority, previous_priority, model, ruleset_version_id, decided_by, trace, "
        "cause, actor_id, review_id, exception_id, decided_at"
    )
    traces = [json.dumps(s[5], separators=(",", ":")) for s in sample]
    with connection.cursor() as cursor:
        started = time.monotonic()
        sql = f"COPY {table} ({columns}) FROM STDIN"
        with transaction.atomic(), cursor.cursor.copy(sql) as copy:
            for i in range(n):
                account_id, priority, model, version_id, decided_by, _ = sample[i % len(sample)]
                copy.write_row(
                    (
                        account_id,
                        priority,
                        None,
                        model,
                        version_id,
                        decided_by,
                        traces[i % len(sample)],
                        "quarterly_review",
                        None,
                        None,
                        None,
                        now,
                    )
                )
        return time.monotonic() - started


def flip_churn(n: int, seed: float) -> None:
    """A typical quarter: the TAMs changed the facts of one account in ten."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute(
            "UPDATE portfolio_account SET churn_risk = NOT churn_risk WHERE random() < 0.1"
        )


def phases(r) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())


def review(**kwargs):  # type: ignore[no-untyped-def]
    from prioritization.services import priorities_reevaluate

    before = load()
    result = priorities_reevaluate(cause="quarterly_review", as_of=AS_OF, **kwargs)
    say(f"  {result.summary()} ({phases(result)}; load before {before}, after {load()})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of first run + baseline")
    add_database_arguments(parser, "bench_reevaluate")
    args = parser.parse_args()

    from portfolio.models import Account
    from prioritization.models import PriorityDecision

    with scratch_database("bench_reevaluate", prefix=args.db_prefix, keep=args.keep) as kept:
        n = Account.objects.count() if kept else 0
        if n and n != args.accounts:
            raise SystemExit(f"the kept database has {n:,} accounts, not {args.accounts:,}")
        if not n:
            say(f"generating {args.accounts:,} accounts")
            t0 = time.monotonic()
            generate(args.accounts)
            say(f"generated {args.accounts:,} accounts in {time.monotonic() - t0:.1f} s")
        load_start = load()
        firsts, baselines, decided = [], [], 0
        for round_number in range(1, args.rounds + 1):
            say(f"round {round_number}: reset")
            reset()
            say(f"round {round_number}: first run")
            first = review()
            firsts.append(first.seconds)
            decided = PriorityDecision.objects.count()
            say(f"round {round_number}: COPY baseline of {decided:,} decisions")
            baselines.append(copy_baseline(decided))
            say(
                f"round {round_number}: first run {firsts[-1]:.1f} s, COPY {baselines[-1]:.1f} s, "
                f"ratio {firsts[-1] / baselines[-1]:.2f}"
            )
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM prioritization_prioritydecision WHERE review_id IS NULL")
        analyze()
        say("nothing changed")
        unchanged = review()
        quarters = []
        for q in (1, 2):
            flip_churn(args.accounts, seed=0.1 * q)
            say(f"typical quarter {q}")
            quarters.append(review())
        say("interrupted review, then carried on")
        flip_churn(args.accounts, seed=0.35)

        class Stop(Exception):
            pass

        batches: list[int] = []

        def stop_half_way(size: int) -> None:
            batches.append(size)
            if sum(batches) >= args.accounts // 2:
                raise Stop

        with contextlib.suppress(Stop):
            review(progress=stop_half_way)
        resumed = review()
        duplicates = (
            PriorityDecision.objects.filter(review_id=resumed.review_id)
            .values("account_id")
            .order_by()
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        first_s, copy_s = statistics.median(firsts), statistics.median(baselines)
        ratio = first_s / copy_s
        figures = {
            "accounts": args.accounts,
            "rounds": args.rounds,
            "first_run_s": firsts,
            "copy_s": baselines,
            "first_run_median_s": first_s,
            "copy_median_s": copy_s,
            "ratio": ratio,
            "decisions": decided,
            "unchanged_s": unchanged.seconds,
            "unchanged_phases": unchanged.timings,
            "quarters_s": [q.seconds for q in quarters],
            "quarters_changed": [q.changed for q in quarters],
            "quarters_phases": [q.timings for q in quarters],
            "resumed": resumed.resumed,
            "resumed_duplicates": duplicates,
            "load_before": load_start,
            "load_after": load(),
        }
        print(json.dumps(figures))
        print(
            f"first run, median of {args.rounds}: {first_s:.1f} s; COPY baseline {copy_s:.1f} s; "
            f"ratio {ratio:.2f} (aim < 120 s and <= 3x); "
            f"nothing changed {unchanged.seconds:.1f} s; "
            f"typical quarters {', '.join(f'{q.seconds:.1f} s' for q in quarters)}; "
            f"resumed review: {duplicates} accounts decided twice"
        )
        ok = ratio <= 3 and first_s < 120 and duplicates == 0 and resumed.resumed
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
