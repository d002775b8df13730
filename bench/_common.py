"""What the benchmarks share: the scratch database (a name prefix, `--keep`, never
serialized), progress lines, load averages, and set-based data building in SQL
(`INSERT ... SELECT ... FROM generate_series`, not the ORM: 1M accounts in well under a
minute of PostgreSQL time instead of ~15 minutes of model instances).

Not a benchmark itself (`bench/run_all.py` skips names starting with `_`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator, Mapping

from django.db import connection, models

_STARTED = time.monotonic()


def add_database_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """`--db-prefix` and `--keep`: the scratch database is `<prefix><name>`."""
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("BENCH_DB_PREFIX", "test_postgres_"),
        help="scratch database name prefix (default test_postgres_, or $BENCH_DB_PREFIX); "
        f"the database is <prefix>{name}",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch database and its data for the next run (which reuses it)",
    )


def say(message: str) -> None:
    """A progress line with the time since the benchmark started and the load average."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s load {load()}] {message}", flush=True)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def scratch_database(name: str, *, prefix: str, keep: bool) -> Iterator[bool]:
    """A migrated scratch database `<prefix><name>` on the server of DATABASE_URL; yields
    True when it was kept from an earlier run (with `--keep`: its data is reused). Never
    serialized: serializing a kept 1M-account database into memory is what made
    `create_test_db` take minutes."""
    creation = connection.creation
    original = connection.settings_dict["NAME"]
    database = f"{prefix}{name}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = database
    existed = keep and _database_exists(database)
    say(f"scratch database {database} ({'kept, reused' if existed else 'new'})")
    creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keep, serialize=False)
    try:
        yield existed
    finally:
        if keep:
            say(f"kept {database}")
            connection.close()
            connection.settings_dict["NAME"] = original
        else:
            creation.destroy_test_db(original, verbosity=0)


def _database_exists(database: str) -> bool:
    with connection._nodb_cursor() as cursor:  # the server's "postgres" database
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        return cursor.fetchone() is not None


def insert_select(
    model: type[models.Model],
    *,
    rows: int,
    exprs: Mapping[str, str],
    source: str = "generate_series({lo}, {hi}) AS g(i)",
    chunk: int = 200_000,
    label: str = "",
) -> int:
    """Insert `rows` rows of `model` with one `INSERT ... SELECT` per chunk of `chunk`.

    `exprs` maps column names to SQL expressions over `g.i` (1..rows) or the columns of
    `source`, whose `{lo}`/`{hi}` are the chunk's bounds (write `%%` for a literal `%`).
    Every other column gets its field's default (so a field added later needs nothing
    here), `now()` for auto_now fields, NULL where nullable. Returns the rows inserted."""
    table = model._meta.db_table
    columns, selects, defaults = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key and f.column not in exprs:
            continue
        columns.append(f.column)
        if f.column in exprs:
            selects.append(exprs[f.column])
        elif f.has_default():
            selects.append("%s")
            defaults.append(f.get_db_prep_save(f.get_default(), connection))
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            selects.append("now()")
        elif f.null:
            selects.append("NULL")
        else:
            raise ValueError(f"{table}.{f.column}: no expression and no default")
    inserted = 0
    for lo in range(1, rows + 1, chunk):
        hi = min(rows, lo + chunk - 1)
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608  # nosec B608 # bench: identifiers and expressions from code
            f"SELECT {', '.join(selects)} FROM {source.format(lo=lo, hi=hi)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, defaults)
            inserted += cursor.rowcount
        if label:
            say(f"  {label}: {inserted:,} / {rows:,}")
    return inserted


def pick(values: list, cast: str = "") -> str:
    """SQL: one of `values` at random, per row (`cast` e.g. "::int[]" when one is None)."""
    items = ", ".join("NULL" if v is None else repr(v) for v in values)
    return f"(ARRAY[{items}]{cast})[1 + floor(random() * {len(values)})::int]"


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
