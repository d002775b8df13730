"""Benchmark: the Salesforce sync against the fake Salesforce over HTTPS, in one run.

    .venv/bin/python bench/sync_salesforce.py [--accounts 100000] [--opportunities 50000]

Generates the accounts (with 500 users as owners and TAMs) and opportunities in the fake
(tests/fakes/salesforce.py, real TLS, real simple-salesforce client), then measures:

  (a) fetching and parsing every page of User, Account and Opportunity, storing nothing;
  (b) the first full sync (validation, COPY + INSERT ... ON CONFLICT, history triggers,
      cursors, link resolution);
  (c) an unchanged re-sync (incremental: nothing changed since the cursor);
  (d) an incremental sync after 1% of accounts and opportunities changed.

(a) and (b) are measured in alternating rounds (--rounds, 5 by default; each (b) into
emptied tables) and their medians compared. Prints each time and the ratios b/a and c/a
(aims: b/a <= 2, c/a < 0.3). Uses a scratch
database of its own (test_<name>_bench_salesforce, migrated, dropped at the end) on the
PostgreSQL server of DATABASE_URL. Figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import multiprocessing
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ["TEST_DB_SUFFIX"] = "bench_salesforce"

import django  # noqa: E402

django.setup()

import trustme  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench._common import add_database_arguments, load, say, scratch_database  # noqa: E402
from tests.fakes.salesforce import FakeSalesforce  # noqa: E402

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
SEGMENTS = ["Enterprise", "Enterprise", "Commercial", "Public Sector"]
HEALTH = ["Green", "Green", "Yellow", "Amber", "Red", None]


def generate(fake: FakeSalesforce, accounts: int, opportunities: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    users = [{"Name": f"User {i}", "Email": f"sf-user{i}@example.com"} for i in range(500)]
    fake.add_many("User", users)
    user_ids = list(fake.objects["User"])
    rows = []
    for i in range(accounts):
        rows.append(
            {
                "Id": f"001B{i:011d}AAA",
                "Name": f"Bench account {i}",
                "ParentId": f"001B{rng.randrange(i):011d}AAA" if i and rng.random() < 0.1 else None,
                "OwnerId": rng.choice(user_ids),
                "ARR__c": float(rng.randint(5_000, 3_000_000)),
                "Region__c": rng.choice(REGIONS),
                "Sales_Segment__c": rng.choice(SEGMENTS),
                "Technical_Account_Manager__c": (
                    rng.choice(user_ids) if rng.random() < 0.6 else None
                ),
                "Health_Score__c": rng.choice(HEALTH),
                "CSM_Priority__c": rng.choice([1, 2, 2, 3, 4, None]),
                "Renewal_Date__c": f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "Customer_Since__c": f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-01",
                "GitLab_Plan__c": rng.choice(["Premium", "Ultimate"]),
                "Digital_Only__c": rng.random() < 0.2,
                "LAM__c": rng.randint(50, 5000),
                "Licensed_Seats__c": rng.randint(10, 5000),
            }
        )
    fake.add_many("Account", rows)
    account_ids = [row["Id"] for row in rows]
    fake.add_many(
        "Opportunity",
        [
            {
                "Id": f"006B{i:011d}AAA",
                "AccountId": rng.choice(account_ids),
                "Name": f"Bench opportunity {i}",
                "Type": rng.choice(["Up-tier", "Renewal", "New Business"]),
                "StageName": rng.choice(["Prospecting", "Negotiation", "Closed Won"]),
                "CloseDate": f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "Amount": float(rng.randint(1_000, 500_000)),
                "IsClosed": False,
                "IsWon": False,
            }
            for i in range(opportunities)
        ],
    )


def change_one_percent(fake: FakeSalesforce, seed: int = 12) -> int:
    rng = random.Random(seed)
    changed = 0
    for obj, field in (("Account", "ARR__c"), ("Opportunity", "Amount")):
        ids = list(fake.objects[obj])
        for record_id in rng.sample(ids, max(1, len(ids) // 100)):
            fake.update(obj, record_id, **{field: float(rng.randint(1_000, 900_000))})
            changed += 1
    return changed


def _serve(conn, ca_path: str) -> None:
    """The fake in a process of its own, as Salesforce is another machine: its CPU work
    (filtering, JSON) must not share this process's GIL with the sync being measured."""
    fake = FakeSalesforce(trustme.CA()).start()
    fake.write_ca(Path(ca_path))
    conn.send(fake.settings_for_session())
    while True:
        command, *args = conn.recv()
        if command == "generate":
            generate(fake, *args)
            conn.send("ok")
        elif command == "change":
            conn.send(change_one_percent(fake))
        else:
            fake.stop()
            conn.send("stopped")
            return


def _explain_slow_statements() -> None:
    """auto_explain in this session: statements over 1 s printed here with their plans
    (nested ones too, e.g. inside the history trigger), sent back as notices.
    pg_stat_statements would need the server restarted with it preloaded."""
    connection.ensure_connection()
    connection.connection.add_notice_handler(
        lambda diag: print(f"    [auto_explain] {diag.message_primary}", flush=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_level = notice")
        cursor.execute("SET auto_explain.log_min_duration = 1000")
        cursor.execute("SET auto_explain.log_nested_statements = on")
        cursor.execute("SET auto_explain.log_analyze = on")


def fetch_only() -> int:
    """(a): every page of every object through the same client, parsed, not stored."""
    from integrations import salesforce
    from portfolio.sync.objects import OBJECTS, soql_for

    client = salesforce.client()
    count = 0
    for spec in OBJECTS:
        for page in client.query_pages(soql_for(spec, None)):
            count += len(page.records)
    return count


def empty_synced_tables() -> None:
    """Back to an empty database for the next first full sync (the fake keeps its data)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE portfolio_salesforceuser, portfolio_account, portfolio_opportunity, "
            "portfolio_accountevent, integrations_synccursor, integrations_syncrun, "
            "integrations_quarantinedrecord, pghistory_context CASCADE"
        )


@contextlib.contextmanager
def scratch_database_and_fake(  # type: ignore[no-untyped-def]
    serve, *, name: str = "bench_salesforce", prefix: str | None = None, keep: bool = False
) -> Iterator[Any]:
    """A migrated scratch database (`<prefix><name>`, never serialized), and
    `serve` (a fake Salesforce loop) in a process of its own with this process's settings
    pointed at it; yields the pipe to the fake. Both go at the end (the database stays with
    `keep`). Shared by the benchmarks that talk to the fake."""
    ca = Path(tempfile.mkdtemp()) / "salesforce-ca.pem"
    prefix = prefix or os.environ.get("BENCH_DB_PREFIX", "test_postgres_")
    with scratch_database(name, prefix=prefix, keep=keep):
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("fork").Process(
            target=serve, args=(child, str(ca)), daemon=True
        )
        server.start()
        try:
            os.environ["REQUESTS_CA_BUNDLE"] = str(ca)
            for name, value in parent.recv().items():
                setattr(settings, name, value)
            yield parent
        finally:
            parent.send(("stop",))
            server.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--opportunities", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (a) and (b)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the last (b) (this process; the fake is another) and print its top "
        "functions, and log every statement over 1 s with its plan (auto_explain)",
    )
    add_database_arguments(parser, "bench_salesforce")
    args = parser.parse_args()

    from portfolio.models import Account, Opportunity
    from portfolio.sync.run import sync_salesforce

    load_before = load()
    with scratch_database_and_fake(_serve, prefix=args.db_prefix, keep=args.keep) as parent:
        if Account.objects.exists():
            empty_synced_tables()
        started = time.perf_counter()
        parent.send(("generate", args.accounts, args.opportunities))
        parent.recv()
        print(
            f"generated {args.accounts:,} accounts and {args.opportunities:,} opportunities "
            f"in the fake in {time.perf_counter() - started:.1f}s"
        )

        # (a) and (b) alternate for a few rounds, each (b) into emptied tables, and the
        # medians are compared: one sample of either swings by a third on a shared machine.
        rounds: dict[str, list[float]] = {"a": [], "b": []}
        for round_number in range(1, args.rounds + 1):
            if round_number > 1:
                empty_synced_tables()
            started = time.perf_counter()
            fetched = fetch_only()
            rounds["a"].append(time.perf_counter() - started)
            print(
                f"round {round_number}: (a) fetch + parse only: {rounds['a'][-1]:6.2f}s  "
                f"({fetched:,} records)"
            )
            profiler = None
            if args.profile and round_number == args.rounds:
                profiler = cProfile.Profile()
                _explain_slow_statements()
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            run = sync_salesforce(trigger="bench").run
            if profiler:
                profiler.disable()
            rounds["b"].append(time.perf_counter() - started)
            ratio = rounds["b"][-1] / rounds["a"][-1]
            print(
                f"round {round_number}: (b) first full sync:    {rounds['b'][-1]:6.2f}s  "
                f"({run.created_count:,} created, {run.quarantined_count:,} quarantined; "
                f"b/a {ratio:.2f})"
            )
            print(f"    where the time went (s): {run.details.get('timings_s')}")
            say(f"round {round_number} done")
            if profiler:
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(35)
                stats.sort_stats("tottime").print_stats(25)
            assert run.created_count == fetched and run.quarantined_count == 0
        timings = {key: statistics.median(values) for key, values in rounds.items()}
        print(f"(a) fetch + parse only, median: {timings['a']:7.2f}s")
        print(f"(b) first full sync, median:    {timings['b']:7.2f}s")

        started = time.perf_counter()
        unchanged = sync_salesforce(trigger="bench").run
        timings["c"] = time.perf_counter() - started
        print(
            f"(c) unchanged re-sync:           {timings['c']:7.2f}s  ({unchanged.created_count:,} "
            f"created, {unchanged.updated_count:,} updated, {unchanged.unchanged_count:,} "
            "unchanged)"
        )
        print(f"    where the time went (s): {unchanged.details.get('timings_s')}")
        parent.send(("change",))
        changed = parent.recv()
        started = time.perf_counter()
        run = sync_salesforce(trigger="bench").run
        timings["d"] = time.perf_counter() - started
        print(
            f"(d) incremental, 1% changed:  {timings['d']:7.2f}s  ({changed:,} changed in the "
            f"fake; {run.updated_count:,} updated, {run.unchanged_count:,} unchanged)"
        )
        assert Account.objects.count() == args.accounts
        assert Opportunity.objects.count() == args.opportunities
        assert unchanged.created_count == unchanged.updated_count == 0
        assert run.updated_count == changed

        ratios = {"b/a": timings["b"] / timings["a"], "c/a": timings["c"] / timings["a"]}
        ratios["d/a"] = timings["d"] / timings["a"]
        print(
            f"b/a = {ratios['b/a']:.2f} (aim <= 2)   c/a = {ratios['c/a']:.3f} (aim < 0.3)   "
            f"d/a = {ratios['d/a']:.3f}"
        )
        figures = {"timings_s": timings, "rounds_s": rounds, "ratios": ratios}
        figures |= {"load_before": load_before, "load_after": load()}
        print(json.dumps(figures))
        ok = ratios["b/a"] <= 2 and ratios["c/a"] < 0.3
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
