"""Writes of the usage app: the one import the three ways in share (`POST /api/v1/usage`,
`manage.py import_usage`, the admin upload page), and the summary it keeps.

Set-based, in batches of `BATCH_ROWS`, each its own transaction: the batch is COPYed into
a temporary staging table as text (a CSV file's lines as they are), checked in one SQL
pass (accounts, metrics and periods by hash lookups), and stored idempotently by
(account, metric, grain, period): with a plain INSERT while none of the batch is stored
yet (a first import, a new month), else each row probed once by its key, new ones
inserted, changed ones updated, identical ones only read, so a rerun writes nothing. The
batches' writes of concurrent imports take turns (an advisory lock), which is what makes
the probe-then-insert safe without ON CONFLICT. A CSV file imported outside a transaction
goes in lanes: sessions of their own, each keeping the rows of its share of the accounts,
working on each batch at once (one core each). The rejected rows get their per-field
reasons (built for them only) and are quarantined (`integrations.QuarantinedRecord`, as
the Salesforce sync does). Accounts are matched by Salesforce id. After the last batch the
touched accounts' summary (`AccountUsage`) is rebuilt and their health re-assessed
(`usage.tasks`), so colours follow the data. The SQL is in `usage.import_sql`; where the
time goes, docs/performance.md, "Usage import".
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import IO, Any, NamedTuple, TypeVar

import psycopg
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from integrations.models import QuarantinedRecord, Source, SyncRun, SyncStatus
from portfolio.models import Account
from usage import import_sql, tasks
from usage.models import AccountUsage, Metric, UsageValue
from usage.selectors import BUILTIN, MONTHLY_SQL, STALE_MONTHS

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_ROWS = 100_000
SUMMARY_BATCH = 20_000
# Rejected rows listed in an answer (all are quarantined; the count is always exact).
REJECTED_SHOWN = 1_000
FIELDS = ("account", "period", "metric", "value")
OBJECT_NAME = "UsageRow"
PARTITION_LOCK_KEY = 0x75736167  # "usag"

# A staged row: position (0-based index of a JSON row; file line of CSV/NDJSON), the four
# fields as text, the JSON type of the value (n number, s string, l list, b other,
# c untyped CSV text), errors found while reading (JSON object text) and the raw record.
StagedRow = tuple[int, str | None, str | None, str | None, str | None, str, str | None, str | None]


@dataclass
class ImportResult:
    run: SyncRun
    rows: int = 0
    accepted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    accounts: int = 0
    rejected: list[dict] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return self.rows - self.accepted

    def summary(self) -> str:
        return (
            f"Usage import {self.run.pk}: {self.rows:,} rows, {self.accepted:,} accepted "
            f"({self.created:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged), "
            f"{self.rejected_count:,} rejected and quarantined, {self.accounts:,} accounts"
        )


# --- Reading rows (no database) -----------------------------------------------------------


def _vtype(value: Any) -> tuple[str | None, str]:
    if value is None:
        return None, "b"
    if isinstance(value, bool):
        return json.dumps(value), "b"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value), "n"
    if isinstance(value, str):
        return value, "s"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = dict.fromkeys(v.strip() for v in value if v.strip())
        return ";".join(names), "l"
    return json.dumps(value)[:200], "b"


def _cap(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:200]


def staged_from_record(index: int, record: Any) -> StagedRow:
    """One JSON row as staged text; shape errors (not an object, unknown fields) are kept
    for the SQL check to report beside the per-field ones."""
    if not isinstance(record, dict):
        errors = {"row": ['Must be an object: {"account", "period", "metric", "value"}.']}
        return (index, None, None, None, None, "x", json.dumps(errors), _raw(record))
    unknown = [k for k in record if k not in FIELDS]
    errors = {
        str(k)[:50]: [f"Unknown field; the valid fields are: {', '.join(FIELDS)}."]
        for k in unknown[:10]
    }
    value, vtype = _vtype(record.get("value"))
    if "value" not in record:
        vtype = "b"
    return (
        index,
        *(
            record.get(name) if isinstance(record.get(name), str) else _cap(record.get(name))
            for name in ("account", "period", "metric")
        ),
        value,
        vtype,
        json.dumps(errors) if errors else None,
        _raw(record),
    )  # type: ignore[return-value]


def _raw(record: Any) -> str:
    text = json.dumps(record, default=str)
    return text if len(text) <= 2_000 else json.dumps({"truncated": text[:2_000]})


def staged_from_ndjson(lines: Iterable[str | bytes]) -> Iterator[StagedRow]:
    """NDJSON: one JSON object a line (blank lines skipped); `line` is the 1-based line."""
    for number, line in enumerate(lines, start=1):
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            errors = {"row": ["Not a JSON object (NDJSON: one object a line)."]}
            raw = json.dumps(text[:2_000])
            yield (number, None, None, None, None, "x", json.dumps(errors), raw)
            continue
        yield staged_from_record(number, record)


def _csv_lines(rows: Iterable[list[str]], width: int, start: int = 2) -> Iterator[tuple[int, Any]]:
    """(line number, cells) of the non-blank lines after the header; a line too short for
    the mapping comes as (line number, its rejected staged row)."""
    for number, row in enumerate(rows, start=start):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            errors = {"row": [f"{len(row)} columns; the mapping needs {width}."]}
            yield number, (number, None, None, None, None, "x", json.dumps(errors), json.dumps(row))
            continue
        yield number, row


def staged_from_csv(
    rows: Iterable[list[str]], *, mapping: dict[str, int], start: int = 2
) -> Iterator[StagedRow]:
    """CSV rows (after the header) with `mapping` of our field -> column index; `line` is
    the 1-based line in the file (the header is line 1; `start`: the first row's line)."""
    width = max(mapping.values()) + 1
    ia, ip, im, iv = (mapping[name] for name in FIELDS)
    # The common line (wide enough, some field given) without a generator per cell: this
    # loop is most of the Python time of a large file.
    for number, row in enumerate(rows, start=start):
        if len(row) >= width:
            account, period = row[ia].strip(), row[ip].strip()
            metric, value = row[im].strip(), row[iv].strip()
            if account or period or metric or value or any(cell.strip() for cell in row):
                yield (
                    number,
                    account or None,
                    period or None,
                    metric or None,
                    value or None,
                    "c",
                    None,
                    None,
                )
            continue
        for _number, short in _csv_lines([row], width):  # too short: rejected, or blank
            yield (number, *short[1:])


@dataclass
class CsvFile:
    """A CSV file for the import (`manage.py import_usage`), read as bytes after its
    header: each batch of lines is COPYed as it is (`FORMAT csv`, the server parsing it)
    into a table of the header's columns, then trimmed and mapped into the staging table
    in SQL, with no Python per row. A batch COPY cannot take as one row a line (a short or
    long line, a quoted line break, non-ASCII text that Python's `str.strip` would trim
    differently, anything COPY refuses) is read by `staged_from_csv` from there to the end
    of the file, so the rows, their line numbers and their reasons are the same."""

    stream: IO[bytes]
    header: list[str]
    mapping: dict[str, int]

    @classmethod
    def open(cls, stream: IO[bytes], chosen: dict[str, str] | None = None) -> CsvFile:
        """Read the header line (ValueError when there is none or it lacks a field)."""
        first = stream.readline()
        if not first.strip():
            raise ValueError("empty file: expected the header account,period,metric,value")
        header = next(csv.reader([first.decode("utf-8")]))
        return cls(stream=stream, header=header, mapping=csv_mapping(header, chosen))


# What Python's str.strip() removes from an ASCII string.
_ASCII_SPACE = "".join(c for c in map(chr, range(128)) if c.isspace())


class _Chained(io.RawIOBase):
    """Bytes already read, then the rest of a stream: the Python reader's input."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.head:
            self.head = self.rest.read(len(buffer))
        n = min(len(buffer), len(self.head))
        buffer[:n], self.head = self.head[:n], self.head[n:]
        return n


def _sql_literal(text: str) -> str:
    """An SQL string literal of `text` (ASCII), every character escaped: built from code."""
    return "E'" + "".join(f"\\x{ord(c):02x}" for c in text) + "'"


# What Python's str.strip() removes besides the line ends: a batch without any of these
# bytes (and no carriage return but in CRLF line ends) has no cell to trim.
_TRIMMED_BYTES = _ASCII_SPACE.replace("\n", "").replace("\r", "").encode()


def _trimmed_cells(src: CsvFile) -> dict[str, str]:
    """Each field's cell of a staged CSV line trimmed as Python's str.strip() would (the
    lines are ASCII), blank as NULL. A cell that starts and ends with something else than
    a space is taken as it is, without calling btrim (which costs more than the rest of
    the cell's check)."""
    space = _sql_literal(_ASCII_SPACE)
    return {
        name: f"CASE WHEN ascii(c{i}) > 32 AND ascii(right(c{i}, 1)) > 32 THEN c{i} "
        f"ELSE nullif(btrim(c{i}, {space}), '') END"
        for name, i in src.mapping.items()
    }


def _csv_views(src: CsvFile) -> list[str]:
    """The two views the check reads a CSV batch through (the staged rows' columns,
    mapped): `n` is the file's line (set before each batch's COPY), and a line whose
    cells are all blank is skipped. One trims each cell (`_trimmed_cells`); the other,
    for a batch with no whitespace to trim, does not."""
    columns = [f"c{i}" for i in range(len(src.header))]
    space = _sql_literal(_ASCII_SPACE)
    trimmed = _trimmed_cells(src)
    plain = {name: f"nullif(c{i}, '')" for name, i in src.mapping.items()}
    views = []
    for name, cells, where in (
        (
            import_sql.CSV_SOURCE,
            trimmed,
            "ascii(c0) > 32 OR " + " OR ".join(f"btrim({c}, {space}) <> ''" for c in columns),
        ),
        (import_sql.CSV_PLAIN_SOURCE, plain, " OR ".join(f"{c} <> ''" for c in columns)),
    ):
        views.append(
            f"CREATE TEMP VIEW {name} AS SELECT n AS line, "  # nosec B608 # columns by number, the literal built from code
            f"{cells['account']} AS account, {cells['period']} AS period, "
            f"{cells['metric']} AS metric, {cells['value']} AS value, 'c'::text AS vtype, "
            f"NULL::text AS read_errors, NULL::text AS raw FROM usage_stage_csv WHERE {where}"
        )
    return views


class _Staged(NamedTuple):
    """A batch put in staging: the table or view to read it through, and its rows (a CSV
    batch's lines, blank ones included; a lane's: the lines it kept)."""

    source: str
    lines: int


def _csv_stage_create(src: CsvFile, lane: int | None = None) -> str:
    """The session's table of a CSV batch's lines and its views; returns the COPY into it
    (with `lane`, of that lane's lines only: import_sql.LANE_SQL. The line numbers stay
    the file's: the identity is drawn for every line COPY reads, kept or not)."""
    columns = [f"c{i}" for i in range(len(src.header))]
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TABLE IF EXISTS usage_stage_csv CASCADE; CREATE TEMP TABLE usage_stage_csv "
            "(n bigint GENERATED ALWAYS AS IDENTITY (CACHE 100000), "
            f"{', '.join(c + ' text' for c in columns)})"
        )
        for view in _csv_views(src):
            cursor.execute(view)
    copy = f"COPY usage_stage_csv ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
    if lane is None:
        return copy
    account = _trimmed_cells(src)["account"]
    return f"{copy} WHERE " + import_sql.LANE_SQL.format(
        account=account, lanes=import_sql.WRITE_LANES, lane=lane
    )


def _csv_python_rows(src: CsvFile, data: bytes, first: int) -> Iterator[StagedRow]:
    """The rows from the batch `data` (its first line `first`) to the end of the file, read
    in Python: for a batch COPY did not take as one row a line."""
    text = io.TextIOWrapper(
        io.BufferedReader(_Chained(data, src.stream)), encoding="utf-8", newline=""
    )
    return staged_from_csv(csv.reader(text), mapping=src.mapping, start=first)


def _python_stagers(
    src: CsvFile, data: bytes, first: int, size: int
) -> Iterator[Callable[[Any], _Staged]]:
    """The batches from `data` (a batch COPY did not take as one row a line, its first line
    `first`) to the end of the file, read in Python."""
    for batch in _batches(_csv_python_rows(src, data, first), size):
        yield partial(_stage_rows, batch)


def _csv_stagers(src: CsvFile, size: int) -> Iterator[Callable[[Any], _Staged | None]]:
    copy = _csv_stage_create(src)
    number = 2
    while lines := list(islice(src.stream, size)):
        state: dict[str, bool] = {}
        data = b"".join(lines)
        yield partial(_copy_csv_lines, data, len(lines), number, copy, state)
        if not state["copied"]:
            yield from _python_stagers(src, data, number, size)
            return
        number += len(lines)


def _copy_csv_lines(
    data: bytes,
    count: int | None,
    first: int,
    copy_sql: str,
    state: dict[str, bool],
    cursor: Any,
) -> _Staged | None:
    """COPY one batch's lines, numbered from `first`; returns the staged rows' source (the
    view to read them through) and the number of lines, or None, and `state["copied"]`
    false, when COPY did not read exactly one row a line (the caller then reads them in
    Python). With `count` None (a lane's COPY, which keeps some lines only), the rows kept
    are counted instead, and the caller checks that the lanes' counts add up."""
    state["copied"] = False
    if not data.isascii():
        return None
    cursor.execute(
        "TRUNCATE usage_stage_csv; "
        "SELECT setval(pg_get_serial_sequence('usage_stage_csv', 'n'), %s, false); "
        "SAVEPOINT usage_csv",
        [first],
    )
    try:
        with cursor.cursor.copy(copy_sql) as copy:
            copy.write(data)
        kept = cursor.cursor.rowcount
        copied = count is None or kept == count
    except psycopg.Error:
        copied = False
    if not copied:
        cursor.execute("ROLLBACK TO SAVEPOINT usage_csv; RELEASE SAVEPOINT usage_csv")
        return None
    cursor.execute("RELEASE SAVEPOINT usage_csv")
    state["copied"] = True
    untrimmed = data.count(b"\r") == data.count(b"\r\n") and len(
        data.translate(None, _TRIMMED_BYTES)
    ) == len(data)
    source = import_sql.CSV_PLAIN_SOURCE if untrimmed else import_sql.CSV_SOURCE
    return _Staged(source, kept)


def staged_from_wide_csv(
    rows: Iterable[list[str]], *, account: int, period: int, metrics: dict[int, str]
) -> Iterator[StagedRow]:
    """A CSV with one column per metric (the upload page's mapping of columns to metrics):
    each non-empty cell is one row; `line` is the 1-based line in the file."""
    width = max([account, period, *metrics]) + 1
    for number, row in _csv_lines(rows, width):
        if isinstance(row, tuple):
            yield row
            continue
        for column, metric in metrics.items():
            value = row[column].strip()
            if value:
                yield (
                    number,
                    row[account].strip(),
                    row[period].strip(),
                    metric,
                    value,
                    "c",
                    None,
                    None,
                )


def csv_mapping(header: list[str], chosen: dict[str, str] | None = None) -> dict[str, int]:
    """Which column holds each field: `chosen` names a column per field (the upload page's
    mapping), else the columns named like the fields. Raises ValueError naming what is
    missing."""
    names = [h.strip().lower() for h in header]
    chosen = chosen or {}
    mapping, missing = {}, []
    for name in FIELDS:
        wanted = (chosen.get(name) or name).strip().lower()
        if wanted in names:
            mapping[name] = names.index(wanted)
        else:
            missing.append(f"{name} (no column {wanted!r})")
    if missing:
        raise ValueError(
            "CSV header: missing " + ", ".join(missing) + f"; the columns are: {', '.join(header)}"
        )
    return mapping


# --- The import -------------------------------------------------------------------------


@dataclass
class _Statements:
    """An import's SQL, built once: per staged rows' source, the check (with the plain
    insert, or alone), the reasons and the resolving of earlier quarantined rows."""

    insert: dict[str, str]
    touched: dict[str, str]
    check: dict[str, str]
    explain: dict[str, str]
    resolve: dict[str, dict[bool, str]]
    params: dict[str, Any]
    # The write locks a batch takes (a lane's own, or all of them).
    write_locks: tuple[int, ...] = import_sql.WRITE_LOCK_KEYS
    # The next batch tries the plain INSERT first (the last batch found none of its rows).
    insert_first: bool = True

    @classmethod
    def build(cls, scope: str, params: dict[str, Any]) -> _Statements:
        sources = (import_sql.PY_SOURCE, import_sql.CSV_SOURCE, import_sql.CSV_PLAIN_SOURCE)
        return cls(
            insert={
                s: import_sql.INSERT_SQL.format(source=s, scope=scope, names=import_sql.NAMES_SQL)
                for s in sources
            },
            touched={s: import_sql.TOUCHED_SQL.format(source=s) for s in sources},
            check={
                s: import_sql.CHECK_SQL.format(source=s, scope=scope, names=import_sql.NAMES_SQL)
                for s in sources
            },
            explain={
                s: import_sql.EXPLAIN_SQL.format(source=s, scope=scope, names=import_sql.NAMES_SQL)
                for s in sources
            },
            resolve={
                s: {
                    rejected: import_sql.RESOLVE_SQL.format(
                        source=s, not_rejected=import_sql.NOT_REJECTED if rejected else ""
                    )
                    for rejected in (False, True)
                }
                for s in sources
            },
            params=params,
        )


def _scope_prepare(scope: QuerySet[Account] | None) -> str:
    """The accounts the caller may write, kept in a temporary table for the whole import
    (one query), and the join condition that limits the check to them."""
    if scope is None:
        return ""
    sql, params = scope.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS usage_scope")
        cursor.execute("CREATE TEMP TABLE usage_scope (id bigint PRIMARY KEY)")
        cursor.execute(
            f"INSERT INTO usage_scope SELECT * FROM ({sql}) q ON CONFLICT DO NOTHING",  # nosec B608 # SQL from Django's compiler, values as parameters
            params,
        )
    return "AND a.id IN (SELECT id FROM usage_scope)"


def _session_prepare(
    scope: QuerySet[Account] | None, params: dict[str, Any], today: dt.date
) -> _Statements:
    """Set up this session for an import (the import's own, or a lane's): its temporary
    tables, the valid periods, the accounts in scope; returns the import's statements."""
    _temp_buffers_raise()
    with connection.cursor() as cursor:
        cursor.execute(import_sql.STAGE_DDL)
    _periods_prepare(today)
    return _Statements.build(_scope_prepare(scope), params)


def _touched_accounts() -> list[int]:
    """The accounts this session's import stored rows of, in id order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id FROM usage_touched ORDER BY account_id")
        return [row[0] for row in cursor.fetchall()]


def _temp_buffers_raise() -> None:
    """Room for a batch's temporary tables in memory: 100,000 staged lines are about 10 MB,
    past the default 8 MB, and the rest went through the operating system's files (about
    a tenth of the import's time). PostgreSQL takes the setting only before the session's
    first temporary table; later it refuses it, and the session keeps what it has."""
    with contextlib.suppress(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET temp_buffers = '128MB'")


def _periods_prepare(today: dt.date) -> None:
    """The valid periods up to `today`, kept for the session (rebuilt on a new day)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(pdate) FROM usage_periods WHERE grain = 'd'")
        if cursor.fetchone()[0] != today:
            cursor.execute(import_sql.PERIODS_SQL, {"today": today})


def partition_name(month: dt.date) -> str:
    return f"{UsageValue._meta.db_table}_{month:%Y_%m}"


def usage_partitions_ensure(months: Iterable[dt.date]) -> list[str]:
    """Create the monthly partitions of `usage_value` that do not exist yet (under an
    advisory lock, so two imports cannot race on the same month). Returns those created."""
    created: list[str] = []
    wanted = sorted({m.replace(day=1) for m in months})
    if not wanted:
        return created
    with connection.cursor() as cursor:
        names = {m: partition_name(m) for m in wanted}
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(names.values())]
        )
        existing = {row[0] for row in cursor.fetchall()}
        missing = [m for m in wanted if names[m] not in existing]
        if not missing:
            return created
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
        for month in missing:
            end = (month + dt.timedelta(days=32)).replace(day=1)
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {names[month]} PARTITION OF usage_value "  # nosec B608 # the name is built from a date here
                "FOR VALUES FROM (%s) TO (%s)",
                [month, end],
            )
            created.append(names[month])
    return created


def _batches(rows: Iterable[StagedRow], size: int) -> Iterator[list[StagedRow]]:
    batch: list[StagedRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def usage_import(
    *,
    rows: Iterable[StagedRow] | CsvFile,
    trigger: str,
    scope: QuerySet[Account] | None = None,
    where: str = "row",
    details: dict | None = None,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    assess: bool = True,
) -> ImportResult:
    """Store staged usage rows (`staged_from_record` / `_ndjson` / `_csv`, or a `CsvFile`
    COPYed as it is), idempotently by
    (account, period, metric); every rejected row is quarantined with its reasons and,
    up to `REJECTED_SHOWN`, listed in the result (`{"index", "errors"}`).

    `scope`: only these accounts may be written (the API caller's book); `where` names a
    row's position in reasons ("row" for an index, "line" for a file). `progress` gets the
    number of rows done after each batch. One run row (`SyncRun`, source `usage`) per
    import."""
    run = SyncRun.objects.create(
        source=Source.USAGE, started_at=timezone.now(), trigger=trigger, details=details or {}
    )
    result = ImportResult(run=run)
    metrics = ", ".join(Metric.objects.order_by("name").values_list("name", flat=True))
    today = timezone.localdate()
    params = {
        "scope_note": " that you may see" if scope is not None else "",
        "today": today,
        "metrics": metrics,
    }
    try:
        sql = _session_prepare(scope, params, today)
        laned: set[int] = set()  # stored by lanes, summarized by them
        if isinstance(rows, CsvFile) and not connection.in_atomic_block:
            # Its own transactions, so its lanes' sessions too: the file in lanes.
            run.details["lanes"] = import_sql.WRITE_LANES
            setup = _LaneSetup(rows, scope, params, today, where, batch_rows)
            laned = _csv_import_in_lanes(rows, result, sql, setup, progress)
        else:
            stagers = (
                _csv_stagers(rows, batch_rows)
                if isinstance(rows, CsvFile)
                else (partial(_stage_rows, batch) for batch in _batches(rows, batch_rows))
            )
            for stage in stagers:
                _import_batch(stage, result, sql, where)
                if progress is not None:
                    progress(result.rows)
        here = _touched_accounts()
        usage_summary_refresh(account_ids=here)
        touched = sorted(laned.union(here))
        result.accounts = len(touched)
    except Exception as exc:
        run.status, run.error = SyncStatus.FAILED, str(exc)[:2000]
        _finish(run, result)
        raise
    run.status = SyncStatus.COMPLETED_WITH_ERRORS if result.rejected_count else SyncStatus.SUCCEEDED
    _finish(run, result)
    if assess and touched:
        tasks.usage_health_assess_enqueue(account_ids=touched)
    return result


def _finish(run: SyncRun, result: ImportResult) -> None:
    run.finished_at = timezone.now()
    run.created_count, run.updated_count = result.created, result.updated
    run.unchanged_count, run.quarantined_count = result.unchanged, result.rejected_count
    run.details = {
        **run.details,
        "rows": result.rows,
        "accepted": result.accepted,
        "accounts": result.accounts,
    }
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "created_count",
            "updated_count",
            "unchanged_count",
            "quarantined_count",
            "details",
        ]
    )


def _stage_rows(batch: list[StagedRow], cursor: Any) -> _Staged:
    with cursor.cursor.copy(
        "COPY usage_stage (line, account, period, metric, value, vtype, read_errors, raw) "
        "FROM STDIN"
    ) as copy:
        for row in batch:
            copy.write_row(row)
    return _Staged(import_sql.PY_SOURCE, len(batch))


@transaction.atomic
def _import_batch(
    stage: Callable[[Any], _Staged | None], result: ImportResult, sql: _Statements, where: str
) -> None:
    with connection.cursor() as cursor:
        # Explicit, not ON COMMIT: a batch may run inside a caller's transaction.
        cursor.execute(
            "TRUNCATE usage_stage, usage_bad; DROP TABLE IF EXISTS usage_checked, usage_rejected"
        )
        # The batch's hash tables and sorts in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # A batch's statements are big enough for the JIT threshold, and compiling costs
        # 0.5-0.8 s a statement here, more than the statements themselves.
        cursor.execute("SET LOCAL jit = off")
        staged_rows = stage(cursor)
        if staged_rows is None:
            return
        source = staged_rows.source
        # The batches of concurrent imports write in turn (to their commit): MERGE_SQL's
        # probe and insert, and INSERT_SQL's, rely on no one else storing a key between.
        for key in sql.write_locks:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        inserted = _attempt(cursor, sql.insert[source], sql.params) if sql.insert_first else None
        if inserted is not None and inserted[0] == staged_rows.lines:
            # Every row stored: nothing to explain (the common case, checked once).
            (accepted,), staged = inserted, staged_rows.lines
            created, updated = accepted, 0
            cursor.execute(sql.touched[source])
        elif inserted is not None:
            # Stored what passed; the check again, kept this time, for the other lines.
            (accepted,) = inserted
            created, updated = accepted, 0
            cursor.execute(sql.check[source], sql.params)
            staged = cursor.rowcount
            cursor.execute(import_sql.CHECKED_TOUCHED_SQL + import_sql.CHECKED_BAD_SQL)
        else:
            cursor.execute(sql.check[source], sql.params)
            staged = cursor.rowcount
            accepted, created, updated = _merge(cursor, sql) if staged else (0, 0, 0)
            if staged > accepted:
                cursor.execute(import_sql.CHECKED_BAD_SQL)
        if not staged:
            return
        rejected = staged - accepted
        if rejected:
            cursor.execute(sql.explain[source], sql.params)
            cursor.execute(
                import_sql.QUARANTINE_SQL,
                {
                    "where": where,
                    "source": Source.USAGE,
                    "object": OBJECT_NAME,
                    "run": result.run.pk,
                },
            )
            shown = max(0, REJECTED_SHOWN - len(result.rejected))
            cursor.execute(
                "SELECT line, errors FROM usage_rejected ORDER BY line LIMIT %s", [shown]
            )
            result.rejected += [
                {"index": line, "errors": e if isinstance(e, dict) else json.loads(e)}
                for line, e in cursor.fetchall()
            ]
        if accepted and _open_quarantine_exists():
            cursor.execute(
                sql.resolve[source][bool(rejected)],
                {"run": result.run.pk, "source": Source.USAGE, "object": OBJECT_NAME},
            )
    result.rows += staged
    result.accepted += accepted
    result.created += created
    result.updated += updated
    result.unchanged += accepted - created - updated
    if rejected:
        logger.warning("Usage import %s: %s rows quarantined", result.run.pk, rejected)


def _merge(cursor: Any, sql: _Statements) -> tuple[int, int, int]:
    """Store the checked rows each probed by its key (MERGE_SQL), after marking the
    repeated keys. Returns (accepted, created, updated)."""
    cursor.execute(import_sql.DUPLICATES_SQL)
    repeats = superseded = 0
    if repeats := cursor.rowcount:
        cursor.execute(import_sql.SUPERSEDED_SQL)
        superseded = cursor.rowcount
    # Each row's probe goes through the partition's key, whatever the statistics say (a
    # partition filled since its last ANALYZE looks empty, and a hash or merge join would
    # read all of it).
    cursor.execute(
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
        "SET LOCAL enable_seqscan = off"
    )
    # A key conflict cannot happen here (the writes take turns): it would be raised.
    probed, created, updated = _attempt(cursor, import_sql.MERGE_SQL, create_months=True) or (
        0,
        0,
        0,
    )
    cursor.execute(
        "SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on; "
        "SET LOCAL enable_seqscan = on"
    )
    # The next batch tries the plain INSERT again when this one found none of its rows.
    sql.insert_first = created == probed
    return probed + repeats - superseded, created, updated


def _attempt(
    cursor: Any, statement: str, params: dict | None = None, *, create_months: bool = False
) -> tuple[int, ...] | None:
    """Run one write statement under a savepoint. Without `create_months`: None when it
    broke on the key (a row already stored, or a key given twice) or on a month without
    its partition. With it: a month without its partition gets it and the statement runs
    again."""
    for _ in range(2):
        try:
            with transaction.atomic():
                cursor.execute(statement, params)
                # A statement without a result gives the rows it wrote.
                return tuple(cursor.fetchone()) if cursor.description else (cursor.rowcount,)
        except IntegrityError as exc:
            code = getattr(exc.__cause__, "sqlstate", None)
            conflict = code == psycopg.errors.UniqueViolation.sqlstate
            no_partition = code == psycopg.errors.CheckViolation.sqlstate
            if not create_months and (conflict or no_partition):
                return None
            if not no_partition:
                raise
            cursor.execute(
                "SELECT DISTINCT date_trunc('month', pdate::timestamp)::date "
                "FROM usage_checked WHERE ok"
            )
            if not usage_partitions_ensure(row[0] for row in cursor.fetchall()):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _open_quarantine_exists() -> bool:
    return QuarantinedRecord.objects.filter(
        source=Source.USAGE, object_name=OBJECT_NAME, resolved_at__isnull=True
    ).exists()


# --- A CSV file in lanes --------------------------------------------------------------


@dataclass
class _LaneSetup:
    """What every lane's session is set up from: the file (its header), the accounts the
    caller may write, the statements' parameters, the day and how a row is named."""

    src: CsvFile
    scope: QuerySet[Account] | None
    params: dict[str, Any]
    today: dt.date
    where: str
    batch_rows: int


class _Lane:
    """One lane of a CSV import (import_sql.WRITE_LANES): a thread of its own, hence a
    database session of its own (Django's connections are per thread), that COPYs every
    batch but keeps, checks and stores the rows of its accounts only. The lanes run each
    batch at once (one core each: the check and the insert are most of an import's time),
    and the next batch once all are done, so the file's batches stay in order."""

    def __init__(self, lane: int, run: SyncRun) -> None:
        self.lane = lane
        self.result = ImportResult(run=run)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"usage-lane{lane}")
        self._copy = ""
        self._sql: _Statements | None = None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._thread.submit(fn, *args)

    def open(self, setup: _LaneSetup) -> None:
        self._sql = _session_prepare(setup.scope, setup.params, setup.today)
        self._sql.write_locks = (import_sql.WRITE_LOCK_KEYS[self.lane],)
        self._copy = _csv_stage_create(setup.src, self.lane)

    def stage(self, data: bytes, first: int) -> _Staged | None:
        """COPY this lane's lines of the batch (committed: into the session's own table);
        None when COPY refused them."""
        with transaction.atomic(), connection.cursor() as cursor:
            return _copy_csv_lines(data, None, first, self._copy, {}, cursor)

    def store(self, staged: _Staged, where: str) -> None:
        """Check and store this lane's rows of the staged batch. A deadlock is retried: a
        lane creating a month's partition locks the whole table, and may wait for another
        lane that waits for it."""
        if self._sql is None:
            raise RuntimeError("the lane's session is not open")
        for attempt in range(3):
            shown = len(self.result.rejected)
            try:
                _import_batch(lambda _cursor: staged, self.result, self._sql, where)
                return
            except OperationalError as exc:
                code = getattr(exc.__cause__, "sqlstate", None)
                if attempt == 2 or code != psycopg.errors.DeadlockDetected.sqlstate:
                    raise
                del self.result.rejected[shown:]

    def close(self, summarize: bool) -> list[int]:
        """The accounts this lane stored rows of, with `summarize` their summary rebuilt
        (the lanes' at once, like their batches); its session closed."""
        try:
            touched = _touched_accounts()
            if summarize:
                usage_summary_refresh(account_ids=touched)
            return touched
        finally:
            connection.close()

    def shutdown(self) -> None:
        self._thread.shutdown(wait=True)


def _all(futures: Iterable[Future[T]]) -> list[T]:
    """Every result, once every lane is done (none left mid-batch when one failed)."""
    pending = list(futures)
    wait(pending)
    return [f.result() for f in pending]


def _csv_import_in_lanes(
    src: CsvFile,
    result: ImportResult,
    sql: _Statements,
    setup: _LaneSetup,
    progress: Callable[[int], None] | None,
) -> set[int]:
    """Import a CSV file batch by batch, each batch in every lane at once; a batch COPY
    does not take as one row a line is, with the rest of the file, read in Python and
    imported on this connection (as `_csv_stagers` does). Adds the lanes' counts to
    `result`; returns the accounts the lanes stored rows of, their summaries rebuilt."""
    lanes = [_Lane(lane, result.run) for lane in range(import_sql.WRITE_LANES)]
    closing: list[Future[list[int]]] = []
    size, done = setup.batch_rows, False
    try:
        _all(lane.submit(lane.open, setup) for lane in lanes)
        number, lines = 2, list(islice(src.stream, size))
        while lines:
            data = b"".join(lines)
            staged = _all(lane.submit(lane.stage, data, number) for lane in lanes)
            # Every line one row: the lanes' rows, which split the file's, add up to its lines.
            if None in staged or sum(s.lines for s in staged if s) != len(lines):
                for stage in _python_stagers(src, data, number, size):
                    _import_batch(stage, result, sql, setup.where)
                    _lanes_progress(progress, result, lanes)
                break
            storing = [
                lane.submit(lane.store, batch, setup.where)
                for lane, batch in zip(lanes, staged, strict=True)
            ]
            number, lines = number + len(lines), list(islice(src.stream, size))  # meanwhile
            _all(storing)
            _lanes_progress(progress, result, lanes)
        done = True
    finally:
        closing = [lane.submit(lane.close, done) for lane in lanes]
        for lane in lanes:
            lane.shutdown()
            # Also when a batch failed: the run counts what the lanes committed before.
            _result_add(result, lane.result)
    return {account for future in closing for account in future.result()}


def _lanes_progress(
    progress: Callable[[int], None] | None, result: ImportResult, lanes: list[_Lane]
) -> None:
    if progress is not None:
        progress(result.rows + sum(lane.result.rows for lane in lanes))


def _result_add(result: ImportResult, lane: ImportResult) -> None:
    """A lane's counts added to the import's; the rejected rows listed in file order."""
    for name in ("rows", "accepted", "created", "updated", "unchanged", "quarantined"):
        setattr(result, name, getattr(result, name) + getattr(lane, name))
    result.rejected = sorted(result.rejected + lane.rejected, key=lambda r: r["index"])[
        :REJECTED_SHOWN
    ]


# --- The summary ----------------------------------------------------------------------


# The summary: each account's latest month and the one before it, side by side. Built once
# from constants of this module; every value goes as a parameter.
_SUMMARY_SQL = (  # nosec B608 # identifiers and clauses from code, values as parameters
    "WITH monthly AS ("  # nosec B608 # as above
    + MONTHLY_SQL.format(
        where="v.account_id = ANY(%(ids)s::bigint[]) "
        "AND m.name = ANY(%(names)s) AND v.period >= %(since)s"
    )
    + """),
latest AS (
    SELECT account_id, max(month) AS month FROM monthly GROUP BY account_id
    -- Older than that says nothing about the account now: no summary.
    HAVING max(month) >= %(current)s
),
pivot AS (
    SELECT l.account_id, l.month,
        max(mo.value) FILTER (WHERE mo.month = l.month AND mo.name = 'active_users') AS active,
        max(mo.value) FILTER (WHERE mo.month = l.month AND mo.name = 'licensed_seats') AS seats,
        max(mo.text) FILTER (WHERE mo.month = l.month AND mo.name = 'version') AS version,
        max(mo.value) FILTER (WHERE mo.month = l.month AND mo.name = 'tickets_opened') AS tickets,
        max(mo.value) FILTER (WHERE mo.month = l.month AND mo.name = 'stages_in_use') AS stages,
        max(mo.value) FILTER (WHERE mo.month = l.month
                              AND mo.name = 'new_features_used') AS features,
        max(mo.value) FILTER (WHERE mo.month = (l.month - interval '1 month')::date
                              AND mo.name = 'active_users') AS prev_active,
        max(mo.value) FILTER (WHERE mo.month = (l.month - interval '1 month')::date
                              AND mo.name = 'licensed_seats') AS prev_seats
    FROM latest l JOIN monthly mo ON mo.account_id = l.account_id
    GROUP BY l.account_id, l.month
), written AS (
INSERT INTO usage_accountusage AS s (
    account_id, month, active_users, licensed_seats, previous_month, previous_active_users,
    previous_licensed_seats, version, tickets_opened, stages_in_use, new_features_used,
    adoption, previous_adoption, updated_at)
SELECT p.account_id, p.month, p.active, p.seats,
    CASE WHEN p.prev_active IS NOT NULL OR p.prev_seats IS NOT NULL
         THEN (p.month - interval '1 month')::date END,
    p.prev_active, p.prev_seats, coalesce(p.version, ''), p.tickets, p.stages, p.features,
    p.active / nullif(coalesce(p.seats, a.licensed_seats), 0),
    p.prev_active / nullif(coalesce(p.prev_seats, p.seats, a.licensed_seats), 0),
    now()
FROM pivot p JOIN portfolio_account a ON a.id = p.account_id
ON CONFLICT (account_id) DO UPDATE SET
    month = EXCLUDED.month, active_users = EXCLUDED.active_users,
    licensed_seats = EXCLUDED.licensed_seats, previous_month = EXCLUDED.previous_month,
    previous_active_users = EXCLUDED.previous_active_users,
    previous_licensed_seats = EXCLUDED.previous_licensed_seats, version = EXCLUDED.version,
    tickets_opened = EXCLUDED.tickets_opened, stages_in_use = EXCLUDED.stages_in_use,
    new_features_used = EXCLUDED.new_features_used, adoption = EXCLUDED.adoption,
    previous_adoption = EXCLUDED.previous_adoption, updated_at = EXCLUDED.updated_at
RETURNING s.account_id
), removed AS (
    -- An account of the batch with no usage that recent left (aged out, or its rows
    -- removed) loses its summary row rather than keep a stale one.
    DELETE FROM usage_accountusage d
    WHERE d.account_id = ANY(%(ids)s::bigint[])
      AND NOT EXISTS (SELECT 1 FROM written w WHERE w.account_id = d.account_id)
)
SELECT count(*) FROM written
"""
)


def _summary_months(today: dt.date) -> tuple[dt.date, dt.date]:
    """(the first month read, the oldest latest month a summary is kept for)."""
    index = today.year * 12 + today.month - 1 - STALE_MONTHS
    current = dt.date(index // 12, index % 12 + 1, 1)
    since = dt.date((index - 1) // 12, (index - 1) % 12 + 1, 1)
    return since, current


def usage_summary_refresh(*, account_ids: list[int]) -> int:
    """Rebuild `AccountUsage` of these accounts from their rows, in batches of
    `SUMMARY_BATCH` accounts (one statement each). Returns the rows written.

    Only the months from `STALE_MONTHS` back (and the one before, for the change) are
    read: older usage says nothing about the account now, and the year of history stays
    unread. An account left with no usage that recent (aged out, or its rows removed)
    loses its summary row (`removed`) rather than keep a stale one."""
    since, current = _summary_months(timezone.localdate())
    written = 0
    for start in range(0, len(account_ids), SUMMARY_BATCH):
        chunk = account_ids[start : start + SUMMARY_BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            # In memory, and not compiled (as the import's batches).
            cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
            cursor.execute(
                _SUMMARY_SQL,
                {"ids": chunk, "names": list(BUILTIN), "since": since, "current": current},
            )
            written += cursor.fetchone()[0]
    return written


# A summary row that no longer says what the rows say: its month aged out, its month's rows
# are gone, or a later month arrived without a refresh (the built-in metrics only, as the
# summary reads them). One probe of the key per row.
_STALE_SUMMARIES_SQL = """
SELECT s.account_id FROM usage_accountusage s
WHERE s.month < %(current)s
   OR NOT EXISTS (
       SELECT 1 FROM usage_value v JOIN usage_metric m ON m.id = v.metric_id
       WHERE v.account_id = s.account_id AND m.name = ANY(%(names)s)
         AND v.period >= s.month AND v.period < (s.month + interval '1 month')::date)
   OR EXISTS (
       SELECT 1 FROM usage_value v JOIN usage_metric m ON m.id = v.metric_id
       WHERE v.account_id = s.account_id AND m.name = ANY(%(names)s)
         AND v.period >= (s.month + interval '1 month')::date AND v.period <= %(today)s)
ORDER BY s.account_id
"""


def usage_summaries_reconcile() -> int:
    """Refresh the summary rows that went stale (`_STALE_SUMMARIES_SQL`): those of
    accounts with no recent usage left are deleted. Returns how many were stale. Daily
    (the beat schedule), before the health run reads them."""
    today = timezone.localdate()
    _since, current = _summary_months(today)
    with connection.cursor() as cursor:
        cursor.execute(
            _STALE_SUMMARIES_SQL, {"current": current, "names": list(BUILTIN), "today": today}
        )
        stale = [row[0] for row in cursor.fetchall()]
    usage_summary_refresh(account_ids=stale)
    return len(stale)


def usage_orphans_purge() -> int:
    """Delete the usage rows of accounts that no longer exist (no foreign key does it,
    see migration 0001)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {UsageValue._meta.db_table} v WHERE NOT EXISTS "  # nosec B608 # table name from the model
            f"(SELECT 1 FROM {Account._meta.db_table} a WHERE a.id = v.account_id)"
        )
        return cursor.rowcount


def account_usage_of(account_id: int) -> AccountUsage | None:
    return AccountUsage.objects.filter(account_id=account_id).first()
