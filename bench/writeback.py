"""Benchmark: the Salesforce write-back of 100,000 pending accounts, against the sync's own
fetch of the same accounts, in one run.

    .venv/bin/python bench/writeback.py [--accounts 100000] [--rounds 3] [--db-prefix P] [--keep]

The fake Salesforce (tests/fakes/salesforce.py, real TLS, the real simple-salesforce
client) runs in a process of its own, as Salesforce is another machine. Steps:

  1. generate the accounts in the fake and sync them into a scratch database;
  2. (a) the baseline: the sync's own fetch of every Account page (parsed, not stored);
  3. every account gets a health colour decided in Portfolio (one UPDATE), recorded for
     the write-back by `writeback_record` (timed: the services' cost);
  4. (b) one write-back sweep of them all (the brake is set aside: this measures the
     writing, not an admin's confirmation), counting the API calls the fake answered.

Aims (issue 11): (b) <= 600 API calls and (b) <= 1x (a)'s time. (a) is the median of
--rounds rounds; (b) is measured once per round on freshly pending rows, median too.
Prints the figures; recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ["TEST_DB_SUFFIX"] = "bench_writeback"

import django  # noqa: E402

django.setup()

import trustme  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench._common import add_database_arguments  # noqa: E402
from bench.sync_salesforce import empty_synced_tables, generate, scratch_database_and_fake  # noqa: E402
from tests.fakes.salesforce import FakeSalesforce  # noqa: E402

COLOURS = ["green", "yellow", "amber", "red"]


def _serve(conn, ca_path: str) -> None:
    fake = FakeSalesforce(trustme.CA()).start()
    fake.write_ca(Path(ca_path))
    conn.send(fake.settings_for_session())
    while True:
        command, *args = conn.recv()
        if command == "generate":
            generate(fake, *args)
            conn.send("ok")
        elif command == "requests":
            conn.send((len(fake.requests), list(fake.write_requests)))
        else:
            fake.stop()
            conn.send("stopped")
            return


def fetch_accounts() -> int:
    """(a): every Account page the sync reads, through the same client, parsed."""
    from integrations import salesforce
    from portfolio.sync.objects import OBJECTS, soql_for

    spec = next(s for s in OBJECTS if s.name == "Account")
    client = salesforce.client()
    return sum(len(page.records) for page in client.query_pages(soql_for(spec, None)))


def make_pending(round_number: int) -> tuple[int, float]:
    """Every account gets this round's colour, decided in Portfolio (those that Salesforce
    already has in that colour are in sync, not pending)."""
    from portfolio.models import Account
    from portfolio.writeback import writeback_record

    colour = COLOURS[round_number % len(COLOURS)]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE portfolio_account SET health = %s", [colour])
    ids = list(Account.objects.values_list("pk", flat=True))
    started = time.perf_counter()
    pending = writeback_record(account_ids=ids, fields=["health"], origin="health_assessment")
    return pending, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile's top functions of each (b)"
    )
    add_database_arguments(parser, "bench_writeback")
    args = parser.parse_args()

    from portfolio import writeback
    from portfolio.models import Account
    from portfolio.sync.run import sync_salesforce

    with scratch_database_and_fake(
        _serve, name="bench_writeback", prefix=args.db_prefix, keep=args.keep
    ) as parent:
        if Account.objects.exists():
            empty_synced_tables()
        settings.SALESFORCE_WRITEBACK_BRAKE_SHARE = 1.0
        settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 10**9
        settings.SALESFORCE_WRITEBACK_SWEEP_SECONDS = 10**6
        parent.send(("generate", args.accounts, 0))
        parent.recv()
        run = sync_salesforce(trigger="bench").run
        print(f"generated and synced {run.created_count:,} accounts")

        rounds: dict[str, list[float]] = {"a": [], "b": [], "record": []}
        calls: list[int] = []
        for round_number in range(1, args.rounds + 1):
            started = time.perf_counter()
            fetched = fetch_accounts()
            rounds["a"].append(time.perf_counter() - started)
            pending, recorded = make_pending(round_number)
            rounds["record"].append(recorded)
            parent.send(("requests",))
            before, _ = parent.recv()
            profiler = cProfile.Profile() if args.profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            result = writeback.writeback_push(trigger="bench")
            rounds["b"].append(time.perf_counter() - started)
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            parent.send(("requests",))
            after, _writes = parent.recv()
            calls.append(after - before)
            assert result.sent == pending, (result.summary(), pending)
            print(
                f"round {round_number}: (a) fetch {fetched:,} accounts: {rounds['a'][-1]:6.2f}s"
                f"   record {pending:,} pending: {recorded:5.2f}s"
                f"   (b) write-back: {rounds['b'][-1]:6.2f}s in {calls[-1]} API calls"
                f" (b/a {rounds['b'][-1] / rounds['a'][-1]:.2f}; {result.summary()})"
            )
        medians = {key: statistics.median(values) for key, values in rounds.items()}
        ratio = medians["b"] / medians["a"]
        print(
            f"median: (a) {medians['a']:.2f}s  (b) {medians['b']:.2f}s  b/a = {ratio:.2f} "
            f"(aim <= 1)   API calls {max(calls)} (aim <= 600)   recording "
            f"{medians['record']:.2f}s"
        )
        print(json.dumps({"medians_s": medians, "rounds_s": rounds, "calls": calls}))
        return 0 if ratio <= 1 and max(calls) <= 600 else 1


if __name__ == "__main__":
    sys.exit(main())
