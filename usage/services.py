"""Writes of the usage app: the one import the three ways in share (`POST /api/v1/usage`,
`manage.py import_usage`, the admin upload page), and the summary it keeps.

Set-based, in batches of `BATCH_ROWS`, each its own transaction: the batch is COPYed into
a temporary staging table as text, checked in one SQL statement (every field of every row,
giving per-field errors), the bad rows quarantined with their reasons
(`integrations.QuarantinedRecord`, as the Salesforce sync does), and the good ones stored
with one `INSERT ... ON CONFLICT (account, metric, grain, period) DO UPDATE ... WHERE
changed`, so a rerun adds nothing and changes nothing. Accounts are matched by Salesforce
id. After the last batch the touched accounts' summary (`AccountUsage`) is rebuilt and
their health re-assessed (`usage.tasks`), so colours follow the data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import IO, Any

import psycopg
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from integrations.models import QuarantinedRecord, Source, SyncRun, SyncStatus
from portfolio.models import Account
from usage.models import AccountUsage, Metric, UsageValue

logger = logging.getLogger(__name__)

BATCH_ROWS = 100_000
SUMMARY_BATCH = 20_000
# Rejected rows listed in an answer (all are quarantined; the count is always exact).
REJECTED_SHOWN = 1_000
FIELDS = ("account", "period", "metric", "value")
OBJECT_NAME = "UsageRow"
PARTITION_LOCK_KEY = 0x75736167  # "usag"
# Months of data older than this before today say nothing about the account now.
STALE_MONTHS = 3

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


def _csv_stagers(src: CsvFile, size: int) -> Iterator[Callable[[Any], int]]:
    width = len(src.header)
    columns = [f"c{i}" for i in range(width)]
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TABLE IF EXISTS usage_stage_csv; CREATE TEMP TABLE usage_stage_csv "
            f"(n bigint GENERATED ALWAYS AS IDENTITY, {', '.join(c + ' text' for c in columns)})"
        )
    trim = {name: f"nullif(btrim(c{i}, %(space)s), '')" for name, i in src.mapping.items()}
    insert = (  # nosec B608 # columns by number, values as parameters
        "INSERT INTO usage_stage (line, account, period, metric, value, vtype) "  # nosec B608
        f"SELECT %(first)s + n - 1, {trim['account']}, {trim['period']}, {trim['metric']}, "
        f"{trim['value']}, 'c' FROM usage_stage_csv WHERE "
        + " OR ".join(f"btrim({c}, %(space)s) <> ''" for c in columns)
    )
    copy = f"COPY usage_stage_csv ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
    number = 2
    while lines := list(islice(src.stream, size)):
        state: dict[str, bool] = {}
        data = b"".join(lines)
        yield partial(_copy_csv_lines, data, len(lines), number, (copy, insert), state)
        if not state["copied"]:
            text = io.TextIOWrapper(
                io.BufferedReader(_Chained(data, src.stream)),
                encoding="utf-8",
                newline="",
            )
            rows = staged_from_csv(csv.reader(text), mapping=src.mapping, start=number)
            for batch in _batches(rows, size):
                yield partial(_stage_rows, batch)
            return
        number += len(lines)


def _copy_csv_lines(
    data: bytes,
    count: int,
    first: int,
    sql: tuple[str, str],
    state: dict[str, bool],
    cursor: Any,
) -> int:
    """COPY one batch's lines; 0 rows staged, and `state["copied"]` false, when COPY did
    not read exactly one row a line (the caller then reads them in Python)."""
    copy_sql, insert = sql
    state["copied"] = False
    if not data.isascii():
        return 0
    cursor.execute("TRUNCATE usage_stage_csv RESTART IDENTITY; SAVEPOINT usage_csv")
    try:
        with cursor.cursor.copy(copy_sql) as copy:
            copy.write(data)
        cursor.execute("SELECT count(*) FROM usage_stage_csv")
        copied = cursor.fetchone()[0] == count
    except psycopg.Error:
        copied = False
    if not copied:
        cursor.execute("ROLLBACK TO SAVEPOINT usage_csv; RELEASE SAVEPOINT usage_csv")
        return 0
    cursor.execute("RELEASE SAVEPOINT usage_csv")
    cursor.execute(insert, {"first": first, "space": _ASCII_SPACE})
    state["copied"] = True
    return cursor.rowcount


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

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_stage (
    line bigint, account text, period text, metric text, value text, vtype text,
    read_errors text, raw text
);
CREATE TEMP TABLE IF NOT EXISTS usage_touched (account_id bigint PRIMARY KEY);
TRUNCATE usage_touched;
"""

# Every field of every staged row checked at once. Each row is parsed once (steps fenced
# with OFFSET 0: PostgreSQL would otherwise inline them and repeat the regular expressions
# in every expression that uses them) and judged with plain comparisons; the per-field
# error messages are built only for the rows that fail. The account join is limited to
# `{scope}` (the accounts the caller may see).
_CHECK_SQL = """
CREATE TEMP TABLE usage_checked AS
WITH parsed AS (
    SELECT s.*, a.id AS account_id, m.id AS metric_id, m.kind,
        CASE WHEN s.period ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?$'
             THEN CASE WHEN length(s.period) = 7 THEN 'm' ELSE 'd' END
        END AS grain,
        CASE
            WHEN m.kind IN ('count', 'stages') AND s.vtype IN ('n', 'c')
                 AND s.value ~ '^[0-9]{{1,12}}$' THEN 'num'
            WHEN m.kind = 'number' AND s.vtype IN ('n', 'c')
                 AND s.value ~ '^[0-9]{{1,12}}(\\.[0-9]{{1,6}})?$' THEN 'num'
            WHEN m.kind = 'version' AND s.vtype IN ('s', 'c')
                 AND s.value ~ '^[0-9]{{1,4}}\\.[0-9]{{1,4}}(\\.[0-9]{{1,4}})?$' THEN 'text'
            WHEN m.kind = 'stages' AND s.vtype IN ('l', 'c')
                 AND s.value ~ ('^[A-Za-z][A-Za-z0-9 _&-]{{0,40}}'
                                || '(;[A-Za-z][A-Za-z0-9 _&-]{{0,40}}){{0,49}}$')
                 THEN 'names'
        END AS vkind
    FROM usage_stage s
    LEFT JOIN portfolio_account a ON a.salesforce_id = s.account {scope}
    LEFT JOIN usage_metric m ON m.name = s.metric
    OFFSET 0
), dated AS (
    SELECT p.*,
        CASE WHEN p.grain IS NULL THEN NULL
             WHEN p.grain = 'm'
                  THEN make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int, 1)
             WHEN p.grain = 'd' AND substr(p.period, 9, 2)::int <= extract(day FROM
                  make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int, 1)
                  + interval '1 month - 1 day')
                  THEN make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int,
                                 substr(p.period, 9, 2)::int)
        END AS pdate
    FROM parsed p
    OFFSET 0
), judged AS (
    SELECT d.*,
        d.vtype <> 'x' AND d.read_errors IS NULL AND d.account_id IS NOT NULL
        AND d.metric_id IS NOT NULL AND d.vkind IS NOT NULL AND d.pdate IS NOT NULL
        AND d.pdate >= DATE '2000-01-01' AND d.pdate <= %(today)s::date AS ok
    FROM dated d
    OFFSET 0
), explained AS (
    SELECT j.*, CASE WHEN j.ok THEN '{{}}'::jsonb ELSE
        coalesce(j.read_errors::jsonb, '{{}}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
            'account', CASE
                WHEN j.vtype = 'x' THEN NULL
                WHEN coalesce(j.account, '') = ''
                    THEN jsonb_build_array('Required: the Salesforce account id.')
                WHEN j.account_id IS NULL THEN jsonb_build_array(
                    'No account with this Salesforce id' || %(scope_note)s || '.')
            END,
            'period', CASE
                WHEN j.vtype = 'x' THEN NULL
                WHEN coalesce(j.period, '') = ''
                    THEN jsonb_build_array('Required: YYYY-MM or YYYY-MM-DD.')
                WHEN j.grain IS NULL
                    THEN jsonb_build_array('Must be YYYY-MM (a month) or YYYY-MM-DD (a day).')
                WHEN j.pdate IS NULL THEN jsonb_build_array('Not a day of that month.')
                WHEN j.pdate < DATE '2000-01-01' THEN jsonb_build_array('Before 2000.')
                WHEN j.pdate > %(today)s::date THEN jsonb_build_array('In the future.')
            END,
            'metric', CASE
                WHEN j.vtype = 'x' THEN NULL
                WHEN coalesce(j.metric, '') = ''
                    THEN jsonb_build_array('Required: the metric name.')
                WHEN j.metric_id IS NULL THEN jsonb_build_array(
                    'Unknown metric; the defined ones are: ' || %(metrics)s
                    || ' (an admin adds more under Product usage > Metrics).')
            END,
            'value', CASE
                WHEN j.vtype = 'x' OR j.metric_id IS NULL THEN NULL
                WHEN j.value IS NULL THEN jsonb_build_array('Required.')
                WHEN j.vkind IS NOT NULL THEN NULL
                WHEN j.kind = 'count'
                    THEN jsonb_build_array(j.metric || ' takes a whole number >= 0.')
                WHEN j.kind = 'number'
                    THEN jsonb_build_array(j.metric || ' takes a number >= 0.')
                WHEN j.kind = 'version' THEN jsonb_build_array(
                    j.metric || ' takes a version "major.minor" as a string, e.g. "17.3".')
                ELSE jsonb_build_array(
                    j.metric || ' takes a list of stage names or a whole number >= 0.')
            END
        )) END AS errors
    FROM judged j
)
SELECT j.line, j.account, j.period, j.metric, j.value, j.vtype, j.raw, j.errors,
    j.account_id, j.metric_id, j.grain, j.pdate, j.ok,
    CASE WHEN j.vkind = 'num' THEN j.value::double precision
         WHEN j.vkind = 'names' THEN cardinality(string_to_array(j.value, ';'))::double precision
    END AS num,
    CASE WHEN j.vkind IN ('text', 'names') THEN j.value END AS txt,
    CASE WHEN j.ok THEN row_number() OVER w END AS rn,
    CASE WHEN j.ok THEN first_value(j.line) OVER w END AS kept_line
FROM explained j
WINDOW w AS (PARTITION BY j.ok, j.account_id, j.metric_id, j.grain, j.pdate ORDER BY j.line DESC)
"""

# An earlier row for the same key with another value: the later row wins, the earlier one
# is rejected (and quarantined) saying which row was kept. Identical repeats are unchanged.
_SUPERSEDED_SQL = """
UPDATE usage_checked c SET ok = false, errors = jsonb_build_object('period', jsonb_build_array(
        'Another row for the same account, period and metric (at ' || c.kept_line
        || ') has a different value and was kept.'))
FROM usage_checked k
WHERE c.rn > 1 AND k.line = c.kept_line AND k.rn = 1
  AND (c.num, c.txt) IS DISTINCT FROM (k.num, k.txt)
"""

_QUARANTINE_SQL = """
WITH bad AS (
    SELECT coalesce(left(c.account, 64), '') AS external_id,
        coalesce(c.raw::jsonb, jsonb_build_object(
            'account', c.account, 'period', c.period, 'metric', c.metric, 'value', c.value
        )) AS payload,
        %(where)s || ' ' || c.line || ': ' || (
            SELECT string_agg(e.key || ': ' || (e.value ->> 0), '; ' ORDER BY e.key)
            FROM jsonb_each(c.errors) e
        ) AS reason
    FROM usage_checked c
    WHERE NOT c.ok
), fresh AS (
    INSERT INTO integrations_quarantinedrecord
        (source, object_name, external_id, payload, reason, sync_run_id, created_at)
    SELECT %(source)s, %(object)s, b.external_id, b.payload, b.reason, %(run)s, now()
    FROM bad b
    WHERE NOT EXISTS (
        SELECT 1 FROM integrations_quarantinedrecord q
        WHERE q.source = %(source)s AND q.object_name = %(object)s
          AND q.external_id = b.external_id AND q.resolved_at IS NULL AND q.payload = b.payload
    )
    RETURNING 1
)
SELECT (SELECT count(*) FROM bad), (SELECT count(*) FROM fresh)
"""

# Straight into the month's partition: no tuple routing, and `xmax = 0` (a new row) can be
# read back, which PostgreSQL 15 refuses through the partitioned parent.
_UPSERT_SQL = """
WITH stored AS (
    INSERT INTO {partition} AS u (account_id, metric_id, grain, period, value, text)
    SELECT c.account_id, c.metric_id, c.grain, c.pdate, c.num, c.txt
    FROM usage_checked c
    WHERE c.ok AND c.rn = 1 AND c.pdate >= %s AND c.pdate < %s
      -- An identical stored row is read, not locked: a rerun writes nothing.
      AND NOT EXISTS (
          SELECT 1 FROM {partition} e
          WHERE e.account_id = c.account_id AND e.metric_id = c.metric_id
            AND e.grain = c.grain AND e.period = c.pdate
            AND e.value IS NOT DISTINCT FROM c.num AND e.text IS NOT DISTINCT FROM c.txt
      )
    ON CONFLICT (account_id, metric_id, grain, period) DO UPDATE
        SET value = EXCLUDED.value, text = EXCLUDED.text
        WHERE (u.value, u.text) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.text)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM stored
"""

# A record quarantined before is resolved when the same account, period and metric now
# arrive valid (and no row for that key was rejected again in this batch).
_RESOLVE_SQL = """
UPDATE integrations_quarantinedrecord q
SET resolved_at = now(), resolved_by_run_id = %(run)s
FROM usage_checked c
WHERE q.source = %(source)s AND q.object_name = %(object)s AND q.resolved_at IS NULL
  AND c.ok AND q.external_id = c.account
  AND q.payload ->> 'period' = c.period AND q.payload ->> 'metric' = c.metric
  AND NOT EXISTS (
      SELECT 1 FROM usage_checked b
      WHERE NOT b.ok AND b.account = c.account AND b.period = c.period
        AND b.metric = c.metric
  )
"""


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
    check_sql = _CHECK_SQL.format(scope=_scope_prepare(scope))
    params = {
        "scope_note": " that you may see" if scope is not None else "",
        "today": timezone.localdate(),
        "metrics": metrics,
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute(_STAGE_DDL)
        stagers = (
            _csv_stagers(rows, batch_rows)
            if isinstance(rows, CsvFile)
            else (partial(_stage_rows, batch) for batch in _batches(rows, batch_rows))
        )
        for stage in stagers:
            _import_batch(stage, result, check_sql, params, where)
            if progress is not None:
                progress(result.rows)
        with connection.cursor() as cursor:
            cursor.execute("SELECT account_id FROM usage_touched ORDER BY account_id")
            touched = [row[0] for row in cursor.fetchall()]
        result.accounts = len(touched)
        usage_summary_refresh(account_ids=touched)
    except Exception as exc:
        run.status, run.error = SyncStatus.FAILED, str(exc)[:2000]
        _finish(run, result)
        raise
    run.status = SyncStatus.COMPLETED_WITH_ERRORS if result.rejected_count else SyncStatus.SUCCEEDED
    _finish(run, result)
    if assess and touched:
        from usage.tasks import usage_health_assess_enqueue

        usage_health_assess_enqueue(account_ids=touched)
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


def _stage_rows(batch: list[StagedRow], cursor: Any) -> int:
    with cursor.cursor.copy(
        "COPY usage_stage (line, account, period, metric, value, vtype, read_errors, raw) "
        "FROM STDIN"
    ) as copy:
        for row in batch:
            copy.write_row(row)
    return len(batch)


@transaction.atomic
def _import_batch(
    stage: Callable[[Any], int],
    result: ImportResult,
    check_sql: str,
    params: dict[str, Any],
    where: str,
) -> None:
    with connection.cursor() as cursor:
        # Explicit, not ON COMMIT: a batch may run inside a caller's transaction.
        cursor.execute("TRUNCATE usage_stage; DROP TABLE IF EXISTS usage_checked")
        # The batch's sort (duplicates within it) in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # A batch's statements are big enough for the JIT threshold, and compiling costs
        # 0.5-0.8 s a statement here, more than the statements themselves.
        cursor.execute("SET LOCAL jit = off")
        staged = stage(cursor)
        if not staged:
            return
        cursor.execute(check_sql, params)
        # Its real size for the planner (a new table is assumed to hold one row).
        cursor.execute("ANALYZE usage_checked (ok, rn, pdate, account_id)")
        cursor.execute("SELECT EXISTS (SELECT 1 FROM usage_checked WHERE rn > 1)")
        if cursor.fetchone()[0]:
            cursor.execute(_SUPERSEDED_SQL)
        # One month's rows at a time into its partition: an index, not a scan per month.
        cursor.execute("CREATE INDEX ON usage_checked (pdate) WHERE ok AND rn = 1")
        cursor.execute(
            _QUARANTINE_SQL,
            {"where": where, "source": Source.USAGE, "object": OBJECT_NAME, "run": result.run.pk},
        )
        rejected, _fresh = cursor.fetchone()
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', pdate)::date FROM usage_checked WHERE ok"
        )
        months = [row[0] for row in cursor.fetchall()]
        usage_partitions_ensure(months)
        created = updated = 0
        # The probe of the stored rows goes through the partition's key, whatever the
        # partition's statistics say: a partition filled since its last ANALYZE looks
        # empty to the planner, which then scans it once per staged row (quadratic).
        cursor.execute("SET LOCAL enable_seqscan = off")
        for month in months:
            end = (month + dt.timedelta(days=32)).replace(day=1)
            cursor.execute(_UPSERT_SQL.format(partition=partition_name(month)), [month, end])
            new, changed = cursor.fetchone()
            created, updated = created + new, updated + changed
        cursor.execute("SET LOCAL enable_seqscan = on")
        cursor.execute(
            "INSERT INTO usage_touched SELECT DISTINCT account_id FROM usage_checked "
            "WHERE ok ON CONFLICT DO NOTHING"
        )
        if rejected:
            shown = max(0, REJECTED_SHOWN - len(result.rejected))
            cursor.execute(
                "SELECT line, errors FROM usage_checked WHERE NOT ok ORDER BY line LIMIT %s",
                [shown],
            )
            result.rejected += [
                {"index": line, "errors": e if isinstance(e, dict) else json.loads(e)}
                for line, e in cursor.fetchall()
            ]
        if staged > rejected and _open_quarantine_exists():
            cursor.execute(
                _RESOLVE_SQL,
                {"run": result.run.pk, "source": Source.USAGE, "object": OBJECT_NAME},
            )
    accepted = staged - rejected
    result.rows += staged
    result.accepted += accepted
    result.created += created
    result.updated += updated
    result.unchanged += accepted - created - updated
    if rejected:
        logger.warning("Usage import %s: %s rows quarantined", result.run.pk, rejected)


def _open_quarantine_exists() -> bool:
    return QuarantinedRecord.objects.filter(
        source=Source.USAGE, object_name=OBJECT_NAME, resolved_at__isnull=True
    ).exists()


# --- The summary ----------------------------------------------------------------------

# Each account's months from its rows: a monthly row when given, else the days folded by
# the metric's aggregation; then the latest month and the one before it, side by side.
MONTHLY_SQL = """
SELECT v.account_id, m.name, date_trunc('month', v.period)::date AS month,
    CASE WHEN bool_or(v.grain = 'm') THEN max(v.value) FILTER (WHERE v.grain = 'm')
         WHEN m.aggregation = 'sum' THEN sum(v.value)
         WHEN m.aggregation = 'avg' THEN avg(v.value)
         WHEN m.aggregation = 'max' THEN max(v.value)
         ELSE (array_agg(v.value ORDER BY v.period DESC))[1]
    END AS value,
    (array_agg(v.text ORDER BY v.grain DESC, v.period DESC))[1] AS text
FROM usage_value v JOIN usage_metric m ON m.id = v.metric_id
WHERE {where}
GROUP BY v.account_id, m.name, m.aggregation, date_trunc('month', v.period)
"""

BUILTIN = (
    "active_users",
    "licensed_seats",
    "version",
    "stages_in_use",
    "tickets_opened",
    "new_features_used",
)

# Built once from constants of this module; every value goes as a parameter.
_SUMMARY_SQL = (  # nosec B608 # identifiers and clauses from code, values as parameters
    "WITH monthly AS ("  # nosec B608 # as above
    + MONTHLY_SQL.format(
        where="v.account_id IN (SELECT unnest(%(ids)s::bigint[])) "
        "AND m.name = ANY(%(names)s) AND v.period >= %(since)s"
    )
    + """),
latest AS (SELECT account_id, max(month) AS month FROM monthly GROUP BY account_id),
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
)
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
"""
)


def usage_summary_refresh(*, account_ids: list[int]) -> int:
    """Rebuild `AccountUsage` of these accounts from their rows, in batches of
    `SUMMARY_BATCH` accounts (one statement each). Returns the rows written.

    Only the last `STALE_MONTHS` + 1 months are read: older usage says nothing about the
    account now (the selectors leave it out), and the year of history stays unread."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 - (STALE_MONTHS + 1)
    since = dt.date(index // 12, index % 12 + 1, 1)
    written = 0
    for start in range(0, len(account_ids), SUMMARY_BATCH):
        chunk = account_ids[start : start + SUMMARY_BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SUMMARY_SQL, {"ids": chunk, "names": list(BUILTIN), "since": since})
            written += cursor.rowcount
    return written


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
