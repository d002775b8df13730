"""Benchmark: importing 1M product usage rows (issue 16) against a raw COPY of the same rows,
in the same run.

    .venv/bin/python bench/usage.py [--rows 1000000] [--months 24] [--rounds 3]
                                    [--db-prefix P] [--keep]

Uses the PostgreSQL server of DATABASE_URL, in a scratch database of its own
(<prefix>bench_usage; migrated, never serialized, dropped at the end unless --keep). The
accounts are built in SQL; the rows are a CSV file (account, period, metric, value: six
metrics a month for `--months` months, from the fake usage feed tests/fakes/usage_feed.py:
seasons, adoption drops, version lag, stage names) written once. Each of `--rounds`
rounds, from empty tables:

  (a) the baselines: COPY of the file as it is into a table of four text columns (the
      cheapest way to put those bytes in PostgreSQL), and COPY of the same rows already
      resolved and typed (account id, metric id, period) into `usage_value` itself (its
      key, its monthly partitions): the cost of storing them at all;
  (b) `import_usage`'s path on the file: the CSV COPYed as it is into staging (no Python
      per row), every field checked in SQL, upserted by (account, metric, grain, period),
      batch by batch in the import's lanes (a session each), then the per-account
      summary rebuilt (timed apart);
  (c) the same file again: every row unchanged, nothing written.

Aims (issue 16): (b) < 60 s and <= 2x (a). Prints the medians of the rounds and each
round's figures, the load average before and after (the machine is shared) and, with a
local server, the CPU time the whole server spent on each step (its every process: the
lanes' sessions and the writers too); recorded in docs/performance.md, "Usage import".
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from bench._common import (  # noqa: E402
    add_database_arguments,
    analyze,
    insert_select,
    load,
    say,
    scratch_database,
)
from tests.fakes import usage_feed  # noqa: E402
from usage.selectors import BUILTIN as METRICS  # noqa: E402

LAST_MONTH = (2026, 11)


def months(n: int) -> list[str]:
    year, month = LAST_MONTH
    index = year * 12 + month - 1
    return [f"{(index - k) // 12}-{(index - k) % 12 + 1:02d}" for k in range(n - 1, -1, -1)]


def generate_accounts(n: int) -> None:
    from portfolio.models import Account

    insert_select(
        Account,
        rows=n,
        label="accounts",
        exprs={
            "salesforce_id": "'001U' || lpad(g.i::text, 14, '0')",
            "name": "'Usage account ' || g.i",
            "arr": "100000",
            "region_id": "'US-EAST'",
            "segment": "'enterprise'",
            "licensed_seats": "1000",
        },
    )
    analyze()


def write_files(folder: Path, accounts: int, month_list: list[str]) -> tuple[Path, Path, int]:
    """The CSV to import (the fake usage feed's rows: tests/fakes/usage_feed.py, with its
    seasons, drops, version lag and stage names) and the same rows resolved (account id,
    metric id, grain, period, value, text) for the typed baseline."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT salesforce_id, id FROM portfolio_account ORDER BY id")
        ids = dict(cursor.fetchall()[:accounts])
        cursor.execute("SELECT name, id FROM usage_metric")
        metric_ids = dict(cursor.fetchall())
    year, month = LAST_MONTH
    feed = usage_feed.monthly_rows(
        usage_feed.profiles(ids), last=date(year, month, 1), months=len(month_list)
    )
    raw, typed, rows = folder / "usage.csv", folder / "usage.typed.tsv", 0
    with raw.open("w", newline="") as f, typed.open("w") as t:
        writer = csv.writer(f)
        writer.writerow(["account", "period", "metric", "value"])
        for row in feed:
            value = row["value"]
            if isinstance(value, list):  # stage names: their count, and the names
                text = ";".join(value)
                cell, number = text, str(len(value))
            elif row["metric"] == "version":
                cell, number, text = value, r"\N", value
            else:
                cell, number, text = str(value), str(value), r"\N"
            writer.writerow([row["account"], row["period"], row["metric"], cell])
            pk, metric = ids[row["account"]], metric_ids[row["metric"]]
            t.write(f"{pk}\t{metric}\tm\t{row['period']}-01\t{number}\t{text}\n")
            rows += 1
    return raw, typed, rows


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu() -> float:
    """CPU seconds of the whole PostgreSQL server so far (NaN when it is not on this
    machine): every live process of the postmaster's and those it has reaped, so the
    import's lanes (sessions of their own, closed at its end) and the server's writers
    count too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        postmaster = _stat(pid)[1]
        own = _stat(postmaster)
    except OSError:
        return math.nan
    ticks = sum(int(t) for t in own[11:15])  # its own time and its reaped children's
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(entry.name)
            except OSError:
                continue
            if fields[1] == postmaster:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def copy_file(sql: str, path: Path) -> float:
    t0 = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
        path.open("rb") as f,
    ):
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    return time.perf_counter() - t0


def autovacuum_off() -> None:
    """No autovacuum on the tables the steps fill: a million new rows set it off, and on
    2 cores its workers take CPU from the next step (seen: the first rounds on a new
    database 40% slower). What it costs after an import is not the import's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.oid::regclass::text FROM pg_class c "
            "JOIN pg_inherits i ON i.inhrelid = c.oid "
            "WHERE i.inhparent = 'usage_value'::regclass"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in [*tables, "usage_accountusage", "bench_raw"]:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")  # nosec B608 # names from the catalog


def autovacuum_wait(limit: float = 60.0) -> None:
    """Until no autovacuum worker runs in this database (at most `limit` seconds)."""
    deadline = time.monotonic() + limit
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                "AND datname = current_database()"
            )
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.5)


def truncate_usage() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE usage_value, usage_accountusage")


def run_import(path: Path) -> tuple[float, float, object]:
    """The command's path (services.usage_import over the CSV, no health re-assessment),
    and the time of the summary rebuild inside it."""
    from usage import services

    refresh = services.usage_summary_refresh
    spent = {"summary": 0.0}

    def timed_refresh(**kwargs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return refresh(**kwargs)
        finally:
            spent["summary"] += time.perf_counter() - t

    services.usage_summary_refresh = timed_refresh  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        with path.open("rb") as f:
            result = services.usage_import(
                rows=services.CsvFile.open(f),
                trigger="bench",
                where="line",
                assess=False,
                progress=lambda done: say(f"  imported {done:,} rows"),
            )
        return time.perf_counter() - t0, spent["summary"], result
    finally:
        services.usage_summary_refresh = refresh  # type: ignore[assignment]


def measure(raw: Path, typed: Path, number: int, rounds: int) -> dict:
    """One round: the two baselines, the import, the rerun (each from empty tables)."""
    autovacuum_wait()
    truncate_usage()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bench_raw")
    say(f"round {number} of {rounds}: (a) COPY of the CSV into four text columns")
    c0 = server_cpu()
    raw_copy = copy_file("COPY bench_raw FROM STDIN (FORMAT csv, HEADER true)", raw)
    f: dict = {"raw": raw_copy, "raw_cpu": server_cpu() - c0}
    say("(a) COPY of the same rows, resolved, into usage_value")
    c0 = server_cpu()
    f["typed"] = copy_file(
        "COPY usage_value (account_id, metric_id, grain, period, value, text) FROM STDIN",
        typed,
    )
    f["typed_cpu"] = server_cpu() - c0
    truncate_usage()
    analyze()
    say("(b) import_usage's path")
    c0 = server_cpu()
    f["import"], f["summary"], f["result"] = run_import(raw)
    f["import_cpu"] = server_cpu() - c0
    f["ratio"] = f["import"] / f["typed"]
    say(f["result"].summary())
    say("(c) the same file again")
    c0 = server_cpu()
    f["rerun"], _, f["again"] = run_import(raw)
    f["rerun_cpu"] = server_cpu() - c0
    say(f["again"].summary())
    return f


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    add_database_arguments(parser, "bench_usage")
    args = parser.parse_args()

    from portfolio.models import Account
    from usage import services

    accounts = math.ceil(args.rows / (len(METRICS) * args.months))
    month_list = months(args.months)
    with scratch_database("bench_usage", prefix=args.db_prefix, keep=args.keep) as kept:
        if not (kept and Account.objects.count() >= accounts):
            say(f"generating {accounts:,} accounts")
            generate_accounts(accounts)
        truncate_usage()
        with tempfile.TemporaryDirectory() as tmp:
            raw, typed, rows = write_files(Path(tmp), accounts, month_list)
            say(f"{rows:,} rows in {raw.stat().st_size / 1e6:.0f} MB of CSV")
            with connection.cursor() as cursor:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS bench_raw (account text, period text, "
                    "metric text, value text)"
                )
                cursor.execute("TRUNCATE bench_raw")
            services.usage_partitions_ensure(date(int(p[:4]), int(p[5:]), 1) for p in month_list)
            autovacuum_off()
            load_before = load()
            figures = [measure(raw, typed, r, args.rounds) for r in range(1, args.rounds + 1)]
            load_after = load()
    med = {
        key: statistics.median(f[key] for f in figures)
        for key, value in figures[0].items()
        if isinstance(value, float)
    }
    result, again = figures[-1]["result"], figures[-1]["again"]
    print(
        f"usage import: {rows:,} rows ({accounts:,} accounts x {args.months} months x "
        f"{len(METRICS)} metrics); medians of {args.rounds} rounds (server CPU: every "
        "process of the PostgreSQL server)\n"
        f"  (a) raw COPY of the CSV (4 text columns): {med['raw']:.1f} s "
        f"(server CPU {med['raw_cpu']:.1f} s)\n"
        f"  (a) COPY of the rows resolved into usage_value (key, partitions): "
        f"{med['typed']:.1f} s (server CPU {med['typed_cpu']:.1f} s)\n"
        f"  (b) import (read, stage, check, upsert, summary): {med['import']:.1f} s "
        f"(server CPU {med['import_cpu']:.1f} s; "
        f"summary of {result.accounts:,} accounts: {med['summary']:.1f} s)\n"
        f"      ratio to the raw COPY {med['import'] / med['raw']:.2f}, to the typed COPY "
        f"{med['import'] / med['typed']:.2f} (median of the rounds' ratios "
        f"{med['ratio']:.2f}; server CPU: {med['import_cpu'] / med['typed_cpu']:.2f})\n"
        f"  (c) rerun, all unchanged: {med['rerun']:.1f} s (server CPU {med['rerun_cpu']:.1f} s; "
        f"{again.unchanged:,} unchanged)\n"
        "  rounds (typed COPY / import / rerun, s): "
        + ", ".join(f"{f['typed']:.1f} / {f['import']:.1f} / {f['rerun']:.1f}" for f in figures)
        + f"\n  load average before {load_before}, after {load_after}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
