"""Portfolio -> Salesforce: write back only what Portfolio decided.

DESIGN.md "Sync rules": "Per written-back field Portfolio keeps the last value read from
Salesforce and the value it wants; it pushes a field only when Portfolio itself changed it
since that read. It never clears or overwrites a Salesforce value it did not change (an
unmatched Salesforce user is not a change). If Salesforce changed the field meanwhile, that
is a conflict, shown, not overwritten. A sweep that would change more than a configured
share of accounts for one field, or clear any, stops and waits for an admin's
confirmation. Writes go in batches (sObject Collections, Bulk 2.0 for large sweeps), each
batch's result recorded as it returns."

How, in this module:
- `writeback_record` is called by the services that change a TAM, a health colour or a
  priority, naming the field and the origin. It stores one `SalesforceWriteback` row per
  (account, field): Salesforce's value last read (the account's `salesforce_*` column) as
  `base_value`, Portfolio's value as `value`. Nothing else creates rows: the sync only
  reads, so a Salesforce TAM with no Portfolio login can never be "pending".
- `writeback_push` (the task, the sweep and `manage.py salesforce_writeback`) takes the
  pending rows under an advisory lock (one sweep at a time), in a `SyncRun` of source
  `salesforce_writeback`:
  1. set-based, without calling Salesforce: a row whose value Salesforce already has is
     settled (deleted); a row whose base differs from what the sync read since is a
     `conflict`;
  2. the brake: more than `SALESFORCE_WRITEBACK_BRAKE_SHARE` of the accounts for one field
     (and more than `SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES`), or any clearing, makes the
     rows `held` by a run marked `needs_confirmation`, and nothing of them is written until
     an admin confirms (`writeback_confirm`) or cancels (`writeback_cancel`);
  3. chunk by chunk (`CHUNK` accounts): the chunk's current values are read from
     Salesforce by Id (a conflict is caught even when the sync has not run since), what is
     still Portfolio's to write goes in one sObject Collections call, and the per-record
     results are committed with the run's counts in one transaction before the next chunk,
     so a killed worker re-sends at most the chunk it was in (and the re-read finds those
     values already there). A large sweep (`SALESFORCE_WRITEBACK_BULK_MIN`) reads once
     what Salesforce changed since the sync's cursor and writes Bulk API 2.0 jobs of
     `BULK_JOB_SIZE` records, each job's results committed as it finishes.
  Written rows are deleted: nothing is left to do, and the runs keep the counts.
  A record Salesforce refuses is `refused` with its error and not retried until Portfolio
  changes the field again; a transient per-record error (`UNABLE_TO_LOCK_ROW`) is retried
  by the next sweeps up to `SALESFORCE_WRITEBACK_MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from integrations import salesforce
from integrations.enqueue import enqueue_on_commit
from integrations.locks import advisory_lock
from integrations.models import Source, SyncCursor, SyncRun, SyncStatus
from integrations.services import sync_run_skip, sync_run_start
from portfolio import tasks
from portfolio.models import (
    Account,
    SalesforceUser,
    SalesforceWriteback,
    WritebackField,
    WritebackOrigin,
    WritebackStatus,
)
from portfolio.sync.records import HEALTH

logger = logging.getLogger(__name__)

LOCK_KEY = zlib.crc32(b"portfolio.salesforce.writeback")
# Accounts per chunk: one read query and one sObject Collections call (its limit is 200).
CHUNK = 200
# Large sweeps (SALESFORCE_WRITEBACK_BULK_MIN): one Bulk API 2.0 job per 10,000 accounts.
BULK_JOB_SIZE = 10_000
SAMPLE_SIZE = 20

# The account column holding what Salesforce last had for each field, in Portfolio's terms.
LAST_READ = {
    WritebackField.TAM: "salesforce_tam_id",
    WritebackField.HEALTH: "salesforce_health",
    WritebackField.PRIORITY: "salesforce_priority",
}
SETTING = {
    WritebackField.TAM: "account_tam",
    WritebackField.HEALTH: "account_health",
    WritebackField.PRIORITY: "account_priority",
}
NO_SALESFORCE_USER = (
    "The TAM has no Salesforce user, so Salesforce cannot be told: link the Portfolio user "
    "to a Salesforce user with the same email (the next sync matches it), then assign again."
)


def salesforce_field(name: str) -> str:
    """The Salesforce API name of a written-back field (every one is a setting)."""
    return settings.SALESFORCE_FIELDS[SETTING[WritebackField(name)]]


def to_salesforce(name: str, value: str) -> Any:
    """Portfolio's stored value -> the value sent to Salesforce ("" clears the field)."""
    if value == "":
        return None
    if name == WritebackField.HEALTH:
        return value.capitalize()
    if name == WritebackField.PRIORITY:
        return int(value)
    return value


def from_salesforce(name: str, raw: Any) -> str:
    """A value read from Salesforce -> Portfolio's terms, as the sync stores it."""
    if raw is None or raw == "":
        return ""
    if name == WritebackField.HEALTH:
        text = str(raw).strip()
        return HEALTH.get(text) or HEALTH.get(text.lower()) or text.lower()
    if name == WritebackField.PRIORITY:
        text = str(raw).strip().upper().removeprefix("P")
        try:
            return str(int(float(text)))
        except ValueError:
            return text
    return str(raw)


def _last_read_sql(name: str, alias: str = "a") -> str:
    column = f"{alias}.{LAST_READ[WritebackField(name)]}"
    return f"coalesce({column}::text, '')"


def _wanted_sql(name: str) -> str:
    """Portfolio's value for the field, in Salesforce terms; NULL when it cannot be said
    (a TAM with no Salesforce user)."""
    if name == WritebackField.TAM:
        # The TAM's Salesforce user: the one Salesforce already has when it is one of
        # theirs (a person with two Salesforce users is no change), else their first.
        return (
            "CASE WHEN a.tam_id IS NULL THEN '' ELSE coalesce("
            "(SELECT u.salesforce_id FROM portfolio_salesforceuser u WHERE u.user_id = a.tam_id "
            "AND u.salesforce_id = a.salesforce_tam_id), "
            "(SELECT u.salesforce_id FROM portfolio_salesforceuser u WHERE u.user_id = a.tam_id "
            "ORDER BY u.id LIMIT 1)) END"
        )
    if name == WritebackField.HEALTH:
        return "a.health"
    return "coalesce(a.priority::text, '')"


# --- recording what Portfolio decided ------------------------------------------------------


def writeback_record(
    *,
    account_ids: Iterable[int],
    fields: Iterable[str],
    origin: str,
    detail: str = "",
    user: User | None = None,
) -> int:
    """Portfolio changed these fields of these accounts: record the values to write back,
    and push them after the surrounding transaction commits.

    Set-based (one statement per field). Each row keeps Salesforce's value last read as its
    base. A value Salesforce already has needs no row (an open one, for a decision
    Portfolio went back on, is settled); a TAM whose user has no Salesforce user is
    `refused` with the reason (Salesforce cannot be told).
    Recording the same value twice changes nothing. Returns the number of rows now pending.
    Does nothing when Salesforce is not configured.
    """
    ids = sorted({int(pk) for pk in account_ids})
    names = [WritebackField(name) for name in dict.fromkeys(fields)]
    if origin not in WritebackOrigin.values:
        raise ValueError(f"Unknown write-back origin: {origin!r}")
    if not ids or not names or not settings.SALESFORCE_ENABLED:
        return 0
    user_id = getattr(user, "pk", None)
    pending = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for name in names:
            wanted, last = _wanted_sql(name), _last_read_sql(name)
            # A value Salesforce already has is nothing to write: an open row for it (an
            # earlier decision Portfolio went back on) is settled, none is made.
            cursor.execute(
                f"""
                WITH s AS (
                    SELECT a.id, {wanted} AS wanted, {last} AS last
                    FROM portfolio_account a
                    WHERE a.id = ANY(%s) AND a.salesforce_id <> ''
                ), settled AS (
                    DELETE FROM portfolio_salesforcewriteback w USING s
                    WHERE w.account_id = s.id AND w.field = %s AND s.wanted = s.last
                )
                INSERT INTO portfolio_salesforcewriteback AS t
                    (account_id, field, base_value, value, origin, origin_detail,
                     changed_by_id, status, salesforce_value, error, attempts, run_id,
                     confirmed, confirmed_by_id, decided_at, updated_at)
                SELECT id, %s, last, coalesce(wanted, ''), %s, %s, %s,
                       CASE WHEN wanted IS NULL THEN 'refused' ELSE 'pending' END,
                       '', CASE WHEN wanted IS NULL THEN %s ELSE '' END, 0, NULL, false,
                       NULL, now(), now()
                FROM s WHERE wanted IS DISTINCT FROM last
                ON CONFLICT (account_id, field) DO UPDATE SET
                    base_value = EXCLUDED.base_value, value = EXCLUDED.value,
                    origin = EXCLUDED.origin, origin_detail = EXCLUDED.origin_detail,
                    changed_by_id = EXCLUDED.changed_by_id, status = EXCLUDED.status,
                    salesforce_value = '', error = EXCLUDED.error, attempts = 0,
                    run_id = NULL, confirmed = false, confirmed_by_id = NULL,
                    decided_at = EXCLUDED.decided_at, updated_at = EXCLUDED.updated_at
                WHERE (t.value, t.status, t.base_value)
                      IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.status, EXCLUDED.base_value)
                RETURNING status = 'pending'
                """,  # nosec B608 # identifiers come from code, values go as query parameters
                [ids, name.value, name.value, origin, detail[:255], user_id, NO_SALESFORCE_USER],
            )
            pending += sum(1 for (is_pending,) in cursor.fetchall() if is_pending)
        if pending:
            _push_on_commit(ids)
    return pending


def _push_on_commit(ids: list[int]) -> None:
    """The push task, after commit; with the broker down the 15-minute sweep pushes the
    rows (enqueue_on_commit logs and never raises)."""
    enqueue_on_commit(tasks.salesforce_writeback, account_ids=ids)


# --- the sweep -----------------------------------------------------------------------------


@dataclass
class WritebackResult:
    """What one write-back run did (also kept in its SyncRun's counts and details)."""

    run: SyncRun | None = None
    sent: int = 0  # fields Salesforce acknowledged
    records: int = 0  # accounts written
    in_sync: int = 0
    conflicts: int = 0
    refused: int = 0
    retrying: int = 0
    calls: int = 0
    held: bool = False
    skipped: bool = False
    more: bool = False  # stopped at its time budget; another sweep continues
    fields: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        if self.skipped:
            return "Salesforce write-back skipped: another sweep is running."
        if self.held:
            counts = ", ".join(f"{n} {name}" for name, n in sorted(self.fields.items()))
            return (
                f"Salesforce write-back stopped before writing ({counts}): a mass change "
                f"waits for an admin's confirmation (run {self.run.pk if self.run else '?'})."
            )
        text = (
            f"{self.sent} field(s) of {self.records} account(s) written to Salesforce in "
            f"{self.calls} call(s), {self.in_sync} already in sync"
        )
        for label, n in (
            ("conflict(s)", self.conflicts),
            ("refused", self.refused),
            ("to retry", self.retrying),
        ):
            if n:
                text += f", {n} {label}"
        return text + (" (continued in another sweep)" if self.more else "")


def _open_rows(*, account_ids: list[int] | None, confirm_run: SyncRun | None) -> QuerySet:
    rows = SalesforceWriteback.objects.filter(status=WritebackStatus.PENDING)
    if confirm_run is not None:
        rows = rows.filter(run=confirm_run)
    if account_ids is not None:
        rows = rows.filter(account_id__in=account_ids)
    return rows


def _classify_locally(rows: QuerySet, run: SyncRun) -> tuple[int, int]:
    """Without calling Salesforce: rows whose value the last sync already read are settled
    (deleted: nothing to write); rows whose base differs from it are conflicts (Salesforce
    changed the field after Portfolio decided). Two statements; returns (in_sync,
    conflicts)."""
    ids_sql, ids_params = rows.values("pk").query.sql_with_params()
    last = " ".join(f"WHEN '{name.value}' THEN {_last_read_sql(name)}" for name in WritebackField)
    looked = f"""
        SELECT w.id, CASE w.field {last} END AS last
        FROM portfolio_salesforcewriteback w
        JOIN portfolio_account a ON a.id = w.account_id
        WHERE w.id IN ({ids_sql})
    """  # nosec B608 # identifiers come from code, values go as query parameters
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH looked AS ({looked})
            DELETE FROM portfolio_salesforcewriteback w USING looked l
            WHERE w.id = l.id AND l.last = w.value
            """,  # nosec B608 # identifiers come from code, values go as query parameters
            ids_params,
        )
        in_sync = cursor.rowcount
        cursor.execute(
            f"""
            WITH looked AS ({looked})
            UPDATE portfolio_salesforcewriteback w SET
                status = 'conflict', salesforce_value = l.last, run_id = %s, updated_at = now()
            FROM looked l
            WHERE w.id = l.id AND l.last <> w.value AND l.last <> w.base_value
            """,  # nosec B608 # identifiers come from code, values go as query parameters
            [*ids_params, run.pk],
        )
        conflicts = cursor.rowcount
    return in_sync, conflicts


def _brake(rows: QuerySet) -> dict[str, Any] | None:
    """What stops the sweep, or None when it may go on: for one field, more changes than
    the brake's share of the book (and more than its minimum), or any clearing of a value
    Salesforce has. Rows an admin confirmed do not count."""
    unconfirmed = rows.filter(confirmed=False)
    per_field = {
        row["field"]: {"changes": row["changes"], "clears": row["clears"]}
        for row in unconfirmed.order_by()
        .values("field")
        .annotate(changes=Count("pk"), clears=Count("pk", filter=Q(value="")))
    }
    if not per_field:
        return None
    book = Account.objects.exclude(salesforce_id="").count()
    share = settings.SALESFORCE_WRITEBACK_BRAKE_SHARE
    limit = max(settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES, int(share * book))
    over = sorted(name for name, c in per_field.items() if c["clears"] > 0 or c["changes"] > limit)
    if not over:
        return None
    # Clearings first: they are what an admin most needs to see.
    sample = [
        {
            "account": w.account.name,
            "salesforce_id": w.account.salesforce_id,
            "field": w.field,
            "from": w.base_value,
            "to": w.value,
            "origin": w.get_origin_display(),
        }
        for w in unconfirmed.select_related("account").order_by("value", "account_id")[:SAMPLE_SIZE]
    ]
    return {
        "fields": per_field,
        "over": over,
        "book": book,
        "share": share,
        "limit": limit,
        "sample": sample,
    }


@dataclass
class _Row:
    pk: int
    account_id: int
    salesforce_id: str
    field: str
    value: str
    base_value: str
    attempts: int
    last_read: str  # what the last sync read from Salesforce (the account's column)


@dataclass
class _Outcome:
    """What became of one row in a chunk."""

    status: str
    seen: str  # Salesforce's value now (after our write, for a sent row)
    error: str = ""
    attempts: int = 0


def writeback_push(
    *,
    account_ids: Iterable[int] | None = None,
    trigger: str = "schedule",
    confirm_run: SyncRun | None = None,
    budget_seconds: float | None = None,
) -> WritebackResult:
    """Write the pending rows (of these accounts, or all: the sweep) to Salesforce, as the
    module docstring says. One sweep at a time: a second one leaves a `skipped` run and
    returns. `confirm_run`: only the rows an admin confirmed in that held run. Stops after
    the chunk that passes `budget_seconds` (`result.more`: the task enqueues the rest)."""
    ids = sorted({int(pk) for pk in account_ids}) if account_ids is not None else None
    if not _open_rows(account_ids=ids, confirm_run=confirm_run).exists():
        return WritebackResult()
    with advisory_lock(LOCK_KEY) as held:
        if not held:
            run = sync_run_skip(
                source=Source.SALESFORCE_WRITEBACK,
                trigger=trigger,
                reason="Another write-back sweep held the lock; it or the next sweep writes "
                "these changes.",
            )
            return WritebackResult(run=run, skipped=True)
        run = sync_run_start(source=Source.SALESFORCE_WRITEBACK, trigger=trigger)
        result = WritebackResult(run=run)
        if budget_seconds is None:
            budget_seconds = settings.SALESFORCE_WRITEBACK_SWEEP_SECONDS
        try:
            _sweep(run, result, ids, confirm_run, time.monotonic() + budget_seconds)
        except BaseException as exc:
            _finish(run, result, error=exc)
            raise
        _finish(run, result)
    logger.info("Salesforce write-back run %s: %s", run.pk, result.summary())
    return result


def _sweep(
    run: SyncRun,
    result: WritebackResult,
    ids: list[int] | None,
    confirm_run: SyncRun | None,
    deadline: float,
) -> None:
    if _dead_runs_in_flight().exists():
        _resume_in_flight(salesforce.client(), run, result)
    rows = _open_rows(account_ids=ids, confirm_run=confirm_run)
    in_sync, conflicts = _classify_locally(rows, run)
    result.in_sync += in_sync
    result.conflicts += conflicts
    SyncRun.objects.filter(pk=run.pk).update(unchanged_count=F("unchanged_count") + in_sync)
    rows = _open_rows(account_ids=ids, confirm_run=confirm_run)
    brake = _brake(rows)
    if brake is not None:
        # Held rows leave the pending state until an admin confirms or cancels them.
        held = rows.filter(confirmed=False).update(run=run, status=WritebackStatus.HELD)
        result.held = True
        result.fields = {name: c["changes"] for name, c in brake["fields"].items()}
        run.details = {**run.details, "brake": brake, "held": held}
        run.save(update_fields=["details"])
        rows = rows.filter(confirmed=True)
        if not rows.exists():
            return
    client = salesforce.client()
    bulk = 0 < settings.SALESFORCE_WRITEBACK_BULK_MIN <= rows.count()
    if bulk:
        # Rows just recorded in bulk have no statistics yet; without them the chunks'
        # keyset query sorts every pending row for each chunk instead of reading the index.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE portfolio_salesforcewriteback")
    # A large sweep reads no chunk by Id: its chunks are as big as its jobs.
    size = BULK_JOB_SIZE if bulk else CHUNK
    changed = None
    if bulk:
        changed = _read_changed(client)
        result.calls += 1
    if bulk:
        _sweep_bulk(client, run, result, ids, confirm_run, deadline, changed)
        return
    after = 0
    while True:
        # One chunk: one sObject Collections call.
        chunk = _next_chunk(ids, confirm_run, after, size)
        if not chunk:
            return
        after = chunk[-1].account_id
        looked = _look(client, result, chunk, changed)
        _send_collection(client, result, looked)
        _record_chunk(run, result, chunk, looked.outcomes)
        if time.monotonic() > deadline and _more_after(ids, confirm_run, after, result):
            return


def _more_after(
    ids: list[int] | None, confirm_run: SyncRun | None, after: int, result: WritebackResult
) -> bool:
    """At the time budget: whether pending rows remain past `after` (another sweep takes
    them: `result.more`)."""
    result.more = (
        _open_rows(account_ids=ids, confirm_run=confirm_run).filter(account_id__gt=after).exists()
    )
    return result.more


@dataclass
class _Job:
    """A chunk of a large sweep with its Bulk API 2.0 job (None: nothing in it to write)."""

    chunk: list[_Row]
    looked: _Looked
    job_id: str | None


def _sweep_bulk(
    client: salesforce.SalesforceClient,
    run: SyncRun,
    result: WritebackResult,
    ids: list[int] | None,
    confirm_run: SyncRun | None,
    deadline: float,
    changed: dict[str, dict] | None,
) -> None:
    """Bulk API 2.0 jobs, two at a time: the next job is read and submitted before the
    results of the one in flight are recorded, so Salesforce works on one while Portfolio
    records the other; and the recording (`_Recorder`) runs on a session of its own while
    this one reads, submits and waits for the next. Each submitted job is noted on the run
    (`details["in_flight"]`, committed at once) until its results are committed: a sweep
    killed with jobs out leaves them to the next sweep, which records their results
    instead of sending them again (`_resume_in_flight`). A kill re-sends at most the job
    submitted but not yet noted."""
    recorder = _Recorder()
    try:
        after, in_flight = 0, None
        while True:
            chunk = _next_chunk(ids, confirm_run, after, BULK_JOB_SIZE)
            job = _submit_job(client, run, result, chunk, changed) if chunk else None
            if in_flight is not None:
                _finish_job(client, run, result, in_flight, recorder)
            if job is None:
                return
            in_flight, after = job, chunk[-1].account_id
            if time.monotonic() > deadline:
                _finish_job(client, run, result, in_flight, recorder)
                recorder.wait()
                if _more_after(ids, confirm_run, after, result):
                    return
                in_flight = None
    finally:
        recorder.close()


class _Recorder:
    """Records a large sweep's chunks (`_record_chunk`), one at a time and in order, in a
    thread with a database session of its own (Django's connections are per thread), so
    that PostgreSQL's work on one chunk's results overlaps the sweep's Python and HTTP for
    the next (two cores: the sweep's own session would otherwise wait for each). At most
    one chunk is being recorded while the next is read: `record` waits for the one before.

    In a transaction (a caller's atomic block, a test's) the rows it wrote would be
    invisible to another session: there it records inline."""

    def __init__(self) -> None:
        self._inline = connection.in_atomic_block
        self._thread = (
            None
            if self._inline
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="writeback-record")
        )
        self._busy: Future[None] | None = None

    def record(self, *args: Any, **kwargs: Any) -> None:
        if self._thread is None:
            _record_chunk(*args, **kwargs)
            return
        self.wait()
        self._busy = self._thread.submit(_record_chunk, *args, **kwargs)

    def wait(self) -> None:
        """Until the chunk being recorded is committed; raises what its recording raised."""
        busy, self._busy = self._busy, None
        if busy is not None:
            busy.result()

    def close(self) -> None:
        if self._thread is None:
            return
        try:
            self.wait()
        finally:
            # A function, not the bound method: it runs in the thread, on its connection.
            self._thread.submit(_close_connection).result()
            self._thread.shutdown(wait=True)


def _close_connection() -> None:
    connection.close()


def _submit_job(
    client: salesforce.SalesforceClient,
    run: SyncRun,
    result: WritebackResult,
    chunk: list[_Row],
    changed: dict[str, dict] | None,
) -> _Job:
    looked = _look(client, result, chunk, changed)
    if not looked.payloads:
        return _Job(chunk, looked, None)
    job_id = client.bulk_update_submit("Account", list(looked.payloads.values()))
    result.calls += 3
    note = {
        "job": job_id,
        "first": chunk[0].account_id,
        "last": chunk[-1].account_id,
        "at": timezone.now().isoformat(),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE integrations_syncrun SET details = jsonb_set(details, '{in_flight}',
                coalesce(details->'in_flight', '[]'::jsonb) || %s::jsonb)
            WHERE id = %s
            """,
            [json.dumps([note]), run.pk],
        )
    return _Job(chunk, looked, job_id)


def _finish_job(
    client: salesforce.SalesforceClient,
    run: SyncRun,
    result: WritebackResult,
    job: _Job,
    recorder: _Recorder,
) -> None:
    if job.job_id is not None:
        _settle(result, job.looked, _job_answers(client, result, job.job_id))
    recorder.record(run, result, job.chunk, job.looked.outcomes, done_job=job.job_id)


def _job_answers(
    client: salesforce.SalesforceClient, result: WritebackResult, job_id: str
) -> dict[str, salesforce.RecordResult]:
    """Waits for a Bulk API 2.0 job to finish (polling with a growing pause); its results by
    Id, under the 15-character form too (results may carry the 18-character form of a
    15-character Id stored in Portfolio)."""
    pause = 0.05
    while True:
        answers = client.bulk_update_results(job_id)
        result.calls += 1
        if answers is not None:
            break
        time.sleep(pause)
        pause = min(pause * 2, 10.0)
    result.calls += 3
    by_id = {answer.salesforce_id: answer for answer in answers}
    for answer in answers:
        by_id.setdefault(answer.salesforce_id[:15], answer)
    return by_id


def _dead_runs_in_flight() -> QuerySet[SyncRun]:
    """Write-back runs with Bulk jobs noted in flight. Called by a sweep holding the lock,
    so every one of them died with its jobs out."""
    return SyncRun.objects.filter(
        source=Source.SALESFORCE_WRITEBACK, details__has_key="in_flight"
    ).exclude(details__in_flight=[])


def _resume_in_flight(
    client: salesforce.SalesforceClient, run: SyncRun, result: WritebackResult
) -> None:
    """The Bulk jobs a sweep that died left in flight (noted on its run; this sweep holds
    the lock, so no other is running): their results are recorded for the rows still
    pending as they were when the job was submitted (a row Portfolio changed since stays
    pending). A job that failed or is gone is forgotten: its rows stay pending and are
    sent again."""
    for old in _dead_runs_in_flight().exclude(pk=run.pk):
        for note in old.details["in_flight"]:
            try:
                answers = _job_answers(client, result, note["job"])
            except salesforce.ERRORS as exc:
                logger.warning(
                    "Write-back: Bulk job %s left by run %s is not usable (%s); its rows are "
                    "sent again",
                    note["job"],
                    old.pk,
                    salesforce.describe(exc),
                )
                answers = {}
            rows = [
                row
                for row in _next_chunk(
                    None,
                    None,
                    note["first"] - 1,
                    BULK_JOB_SIZE,
                    last=note["last"],
                    unchanged_since=note["at"],
                )
                if row.salesforce_id in answers or row.salesforce_id[:15] in answers
            ]
            outcomes = {
                row.pk: _answer_outcome(
                    row, answers.get(row.salesforce_id) or answers[row.salesforce_id[:15]]
                )
                for row in rows
            }
            result.records += len(
                {row.account_id for row in rows if outcomes[row.pk].status == WritebackStatus.SENT}
            )
            _record_chunk(old, result, rows, outcomes, done_job=note["job"])
            logger.info(
                "Write-back: recorded %s result(s) of Bulk job %s left by run %s",
                len(rows),
                note["job"],
                old.pk,
            )


def _next_chunk(
    ids: list[int] | None,
    confirm_run: SyncRun | None,
    after: int,
    size: int,
    *,
    last: int | None = None,
    unchanged_since: str | None = None,
) -> list[_Row]:
    """The pending rows of the next `size` accounts after `after`, in keyset order (one
    query, read from the pending index and stopped at the limit: an account has at most
    one row a field). `a.id > after` as well as `w.account_id > after`, so that the
    account side of the join starts there too instead of at the first account."""
    limit = size * len(WritebackField)
    where = ["w.status = 'pending'", "w.account_id > %s", "a.id > %s"]
    params: list[int | str | list[int]] = [after, after]
    if confirm_run is not None:
        where.append("w.run_id = %s")
        params.append(confirm_run.pk)
    if ids is not None:
        where.append("w.account_id = ANY(%s)")
        params.append(ids)
    if last is not None:  # a resumed job's accounts: up to its last one
        where.append("w.account_id <= %s")
        params.append(last)
    if unchanged_since is not None:  # ... as they were when it was submitted
        where.append("w.updated_at <= %s::timestamptz")
        params.append(unchanged_since)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT w.id, w.account_id, a.salesforce_id, w.field, w.value, w.base_value,
                   w.attempts, a.salesforce_tam_id, a.salesforce_health, a.salesforce_priority
            FROM portfolio_salesforcewriteback w
            JOIN portfolio_account a ON a.id = w.account_id
            WHERE {" AND ".join(where)}
            ORDER BY w.account_id, w.field
            LIMIT %s
            """,  # nosec B608 # identifiers come from code, values go as query parameters
            [*params, limit],
        )
        found = cursor.fetchall()
    accounts = list(dict.fromkeys(values[1] for values in found))[:size]
    if len(found) == limit and len(accounts) > 1 and len(accounts) < size:
        accounts.pop()  # the last account's rows may go on past the limit
    keep = set(accounts)
    chunk = []
    for pk, account_id, salesforce_id, name, value, base, attempts, *read in found:
        if account_id in keep:
            last_read = dict(zip(("tam", "health", "priority"), read, strict=True))[name]
            chunk.append(
                _Row(
                    pk,
                    account_id,
                    salesforce_id,
                    name,
                    value,
                    base,
                    attempts,
                    last_read="" if last_read is None else str(last_read),
                )
            )
    return chunk


def _read_changed(client: salesforce.SalesforceClient) -> dict[str, dict] | None:
    """For a large sweep: the accounts Salesforce changed since the last sync's cursor (the
    only ones whose values can differ from what the sync read), in one paged query of the
    written-back fields. None without a cursor: then each chunk is read by Id."""
    cursor = (
        SyncCursor.objects.filter(source=Source.SALESFORCE, object_name="Account")
        .values_list("position", flat=True)
        .first()
    )
    if cursor is None:
        return None
    names = [salesforce_field(name) for name in WritebackField]
    stamp = cursor.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    soql = f"SELECT Id, {', '.join(names)} FROM Account WHERE SystemModstamp >= {stamp}"  # nosec B608 # identifiers come from code, values go as query parameters
    changed: dict[str, dict] = {}
    for page in client.query_pages(soql):
        for record in page.records:
            changed[str(record.get("Id"))] = record
    return changed


def _read_current(client: salesforce.SalesforceClient, chunk: list[_Row]) -> dict[str, dict]:
    """The chunk's accounts as Salesforce has them now (one query)."""
    names = [salesforce_field(name) for name in WritebackField]
    ids = sorted({row.salesforce_id for row in chunk})
    # Salesforce ids are 15 or 18 letters and digits: anything else is dropped, so no
    # stored value can change the query.
    quoted = ", ".join(f"'{sid}'" for sid in ids if sid.isalnum() and sid.isascii())
    if not quoted:
        return {}
    soql = f"SELECT Id, {', '.join(names)} FROM Account WHERE Id IN ({quoted})"  # nosec B608 # identifiers come from code, values go as query parameters
    current: dict[str, dict] = {}
    for page in client.query_pages(soql):
        for record in page.records:
            current[str(record.get("Id"))] = record
    return current


@dataclass
class _Looked:
    """A chunk after reading Salesforce's current values: the rows already settled (in
    sync, conflict, gone) and the records still to write, one per account."""

    outcomes: dict[int, _Outcome] = field(default_factory=dict)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    sending: dict[str, list[_Row]] = field(default_factory=lambda: defaultdict(list))


def _look(
    client: salesforce.SalesforceClient,
    result: WritebackResult,
    chunk: list[_Row],
    changed: dict[str, dict] | None,
) -> _Looked:
    """Salesforce's value of each row now: read by Id, or, in a large sweep, from what
    changed since the last sync (an account absent from it still has what the sync read)."""
    if changed is None:
        current, exact = _read_current(client, chunk), True
        result.calls += 1
    else:
        current, exact = changed, False
    looked = _Looked()
    names = {name.value: salesforce_field(name) for name in WritebackField}
    for row in chunk:
        name = names[row.field]
        record = current.get(row.salesforce_id) or _by_prefix(current, row.salesforce_id)
        if record is not None:
            seen = from_salesforce(row.field, record.get(name))
        elif not exact:
            seen = row.last_read  # unchanged since the sync read it
        else:
            looked.outcomes[row.pk] = _Outcome(
                WritebackStatus.REFUSED,
                row.base_value,
                f"Salesforce has no Account {row.salesforce_id} (deleted or merged); nothing "
                "was written.",
                row.attempts + 1,
            )
            continue
        if seen == row.value:
            looked.outcomes[row.pk] = _Outcome(WritebackStatus.IN_SYNC, seen, attempts=row.attempts)
        elif seen != row.base_value:
            looked.outcomes[row.pk] = _Outcome(
                WritebackStatus.CONFLICT, seen, attempts=row.attempts
            )
        else:
            payload = looked.payloads.setdefault(row.salesforce_id, {"Id": row.salesforce_id})
            payload[name] = to_salesforce(row.field, row.value)
            looked.sending[row.salesforce_id].append(row)
    return looked


def _settle(result: WritebackResult, looked: _Looked, answers: dict[str, Any]) -> None:
    for sid, rows in looked.sending.items():
        answer = answers.get(sid) or salesforce.RecordResult(
            salesforce_id=sid,
            success=False,
            error_code="NO_RESULT",
            message="Salesforce returned no result for this record",
            retryable=True,
        )
        result.records += answer.success
        for row in rows:
            looked.outcomes[row.pk] = _answer_outcome(row, answer)


def _send_collection(
    client: salesforce.SalesforceClient, result: WritebackResult, looked: _Looked
) -> None:
    if not looked.payloads:
        return
    answers = client.update_collection("Account", list(looked.payloads.values()))
    result.calls += 1
    _settle(result, looked, dict(zip(looked.payloads, answers, strict=True)))


def _by_prefix(current: dict[str, dict], salesforce_id: str) -> dict | None:
    """Salesforce answers with 18-character Ids; an account stored with the 15-character
    form is the same record."""
    if len(salesforce_id) == 15:
        for key, record in current.items():
            if key[:15] == salesforce_id:
                return record
    return None


def _answer_outcome(row: _Row, answer: salesforce.RecordResult) -> _Outcome:
    attempts = row.attempts + 1
    if answer.success:
        return _Outcome(WritebackStatus.SENT, row.value, attempts=attempts)
    error = f"{answer.error_code}: {answer.message}".strip(": ")
    if answer.retryable and attempts < settings.SALESFORCE_WRITEBACK_MAX_ATTEMPTS:
        return _Outcome(
            WritebackStatus.PENDING,
            row.base_value,
            f"{error} (try {attempts} of {settings.SALESFORCE_WRITEBACK_MAX_ATTEMPTS})",
            attempts,
        )
    return _Outcome(WritebackStatus.REFUSED, row.base_value, error, attempts)


def _record_chunk(
    run: SyncRun,
    result: WritebackResult,
    chunk: list[_Row],
    outcomes: dict[int, _Outcome],
    *,
    done_job: str | None = None,
) -> None:
    """One transaction per chunk: the rows' outcomes, Salesforce's values now on the
    accounts (so the next pull sees our own write as unchanged), the run's counts, and the
    chunk's Bulk job off the run's jobs in flight.

    A row whose value Portfolio changed while the chunk was out keeps its new value and
    stays pending, based on what Salesforce has now."""
    values = []
    counts: dict[str, int] = defaultdict(int)
    for row in chunk:
        outcome = outcomes[row.pk]
        counts[outcome.status] += 1
        values.append(
            {
                "id": row.pk,
                "account_id": row.account_id,
                "field": row.field,
                "value": row.value,
                "status": outcome.status,
                "seen": outcome.seen,
                "error": outcome.error,
                "attempts": outcome.attempts,
            }
        )
    with transaction.atomic(), connection.cursor() as cursor:
        # Only the salesforce_* columns of accounts change: no history to write (and the
        # trigger's join of transition tables would cost as much as the update itself).
        with pgtrigger.ignore("portfolio.Account:update_update"):
            _record_outcomes(cursor, run.pk, values)
        if done_job is not None:
            cursor.execute(
                """
                UPDATE integrations_syncrun SET details = jsonb_set(details, '{in_flight}',
                    (SELECT coalesce(jsonb_agg(e), '[]'::jsonb)
                     FROM jsonb_array_elements(details->'in_flight') e
                     WHERE e->>'job' <> %s))
                WHERE id = %s AND details ? 'in_flight'
                """,
                [done_job, run.pk],
            )
        SyncRun.objects.filter(pk=run.pk).update(
            updated_count=F("updated_count") + counts[WritebackStatus.SENT],
            unchanged_count=F("unchanged_count") + counts[WritebackStatus.IN_SYNC],
            quarantined_count=F("quarantined_count") + counts[WritebackStatus.REFUSED],
        )
    result.sent += counts[WritebackStatus.SENT]
    result.in_sync += counts[WritebackStatus.IN_SYNC]
    result.conflicts += counts[WritebackStatus.CONFLICT]
    result.refused += counts[WritebackStatus.REFUSED]
    result.retrying += counts[WritebackStatus.PENDING]
    for row in chunk:
        if outcomes[row.pk].status == WritebackStatus.SENT:
            result.fields[row.field] = result.fields.get(row.field, 0) + 1


def _record_outcomes(cursor: Any, run_id: int, values: list[dict[str, Any]]) -> None:
    """One statement: written or already there, a row goes (nothing is left to do; its run
    keeps the counts); a row whose value Portfolio changed while the chunk was out stays,
    on the base Salesforce has now; the others take their outcome. Each account's
    `salesforce_*` columns take what Salesforce has now. The rows travel as one JSON
    parameter: quoting one string costs far less than quoting arrays element by element."""
    if not values:
        return
    last_read = ", ".join(
        f"{column} = CASE WHEN p.has_{name.value} THEN {_seen_cast(name, f'p.{name.value}')} "
        f"ELSE a.{column} END"
        for name, column in LAST_READ.items()
    )
    pivot = ", ".join(
        f"bool_or(field = '{name.value}') AS has_{name.value}, "
        f"max(seen) FILTER (WHERE field = '{name.value}') AS {name.value}"
        for name in WritebackField
    )
    changed = " OR ".join(
        f"(p.has_{name.value} AND a.{column} IS DISTINCT FROM "
        f"{_seen_cast(name, f'p.{name.value}')})"
        for name, column in LAST_READ.items()
    )
    cursor.execute(
        f"""
        WITH v AS (
            SELECT * FROM json_to_recordset(%s::json)
                AS v(id bigint, account_id bigint, field text, value text, status text,
                     seen text, error text, attempts int)
        ), settled AS (
            DELETE FROM portfolio_salesforcewriteback w USING v
            WHERE w.id = v.id AND w.value = v.value AND v.status IN ('sent', 'in_sync')
            RETURNING w.id
        ), kept AS (
            UPDATE portfolio_salesforcewriteback w SET
                status = CASE WHEN w.value = v.value THEN v.status ELSE w.status END,
                base_value = CASE WHEN w.value = v.value AND v.status <> 'conflict'
                                  THEN w.base_value ELSE v.seen END,
                salesforce_value = CASE WHEN v.status = 'conflict' THEN v.seen ELSE '' END,
                error = CASE WHEN w.value = v.value THEN v.error ELSE w.error END,
                attempts = v.attempts,
                run_id = %s, updated_at = now()
            FROM v
            WHERE w.id = v.id AND w.id NOT IN (SELECT id FROM settled)
        ), p AS (
            SELECT account_id, {pivot} FROM v GROUP BY account_id
        )
        UPDATE portfolio_account a SET {last_read}
        FROM p
        WHERE a.id = p.account_id AND ({changed})
        """,  # nosec B608 # identifiers come from code, values go as query parameters
        [json.dumps(values), run_id],
    )


def _seen_cast(name: WritebackField, expression: str) -> str:
    if name == WritebackField.PRIORITY:
        return f"NULLIF({expression}, '')::smallint"
    return expression


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, salesforce.SalesforceExpiredSession) and isinstance(exc.content, str):
        return exc.content  # the guidance for the admin (integrations.salesforce)
    if isinstance(exc, salesforce.ERRORS):
        return f"Salesforce: {salesforce.describe(exc)}"
    return f"{type(exc).__name__}: {exc}"[:500]


def _finish(run: SyncRun, result: WritebackResult, *, error: BaseException | None = None) -> None:
    # details too: the Bulk jobs noted in flight (a failed sweep leaves them to the next).
    run.refresh_from_db(fields=["updated_count", "unchanged_count", "quarantined_count", "details"])
    if error is not None:
        status = SyncStatus.FAILED
        run.error = _error_text(error)
    elif result.held:
        status = SyncStatus.NEEDS_CONFIRMATION
    elif result.refused or result.conflicts:
        status = SyncStatus.COMPLETED_WITH_ERRORS
    else:
        status = SyncStatus.SUCCEEDED
    run.status = status
    run.finished_at = timezone.now()
    run.details = {
        **run.details,
        "sent": result.sent,
        "records": result.records,
        "in_sync": result.in_sync,
        "conflicts": result.conflicts,
        "refused": result.refused,
        "retrying": result.retrying,
        "calls": result.calls,
        "fields_sent": result.fields if not result.held else {},
        "continued": result.more,
    }
    run.save(update_fields=["status", "finished_at", "error", "details"])


# --- what an admin sees and decides --------------------------------------------------------


def writeback_preview(*, account_ids: Iterable[int] | None = None) -> dict[str, Any]:
    """What a sweep would send now, per field, without writing or calling Salesforce (the
    `--dry-run`): counts of changes, clearings, values Salesforce already has and conflicts
    against the last sync's read, a sample, and whether the brake would stop it."""
    ids = sorted({int(pk) for pk in account_ids}) if account_ids is not None else None
    rows = _open_rows(account_ids=ids, confirm_run=None)
    ids_sql, ids_params = rows.values("pk").query.sql_with_params()
    last = " ".join(f"WHEN '{name.value}' THEN {_last_read_sql(name)}" for name in WritebackField)
    fields: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT field,
                   count(*) FILTER (WHERE last <> value AND last = base_value),
                   count(*) FILTER (WHERE last <> value AND last = base_value AND value = ''),
                   count(*) FILTER (WHERE last = value),
                   count(*) FILTER (WHERE last <> value AND last <> base_value)
            FROM (
                SELECT w.field, w.value, w.base_value, CASE w.field {last} END AS last
                FROM portfolio_salesforcewriteback w
                JOIN portfolio_account a ON a.id = w.account_id
                WHERE w.id IN ({ids_sql})
            ) s
            GROUP BY field ORDER BY field
            """,  # nosec B608 # identifiers come from code, values go as query parameters
            ids_params,
        )
        for name, send, clears, in_sync, conflicts in cursor.fetchall():
            fields[name] = {
                "send": send,
                "clears": clears,
                "in_sync": in_sync,
                "conflicts": conflicts,
            }
    sample = [
        {
            "account": w.account.name,
            "salesforce_id": w.account.salesforce_id,
            "field": salesforce_field(w.field),
            "from": to_salesforce(w.field, w.base_value),
            "to": to_salesforce(w.field, w.value),
            "origin": w.get_origin_display(),
        }
        for w in rows.select_related("account").order_by("value", "account_id")[:SAMPLE_SIZE]
    ]
    brake = _brake(rows)
    return {"fields": fields, "sample": sample, "brake": brake}


def held_runs() -> QuerySet[SyncRun]:
    """Write-back runs that stopped at the brake and wait for an admin."""
    return SyncRun.objects.filter(
        source=Source.SALESFORCE_WRITEBACK, status=SyncStatus.NEEDS_CONFIRMATION
    ).exclude(details__has_key="decided_by")


def _held_run(run_id: int) -> SyncRun:
    run = SyncRun.objects.select_for_update().get(pk=run_id)
    if run.source != Source.SALESFORCE_WRITEBACK or run.status != SyncStatus.NEEDS_CONFIRMATION:
        raise ValueError(f"Run {run_id} is not a write-back waiting for confirmation.")
    if "decided_by" in run.details:
        raise ValueError(
            f"Run {run_id} was already {run.details.get('decision')} by "
            f"{run.details['decided_by']}."
        )
    return run


def _decide(run: SyncRun, user: User | None, decision: str) -> None:
    run.details = {
        **run.details,
        "decision": decision,
        "decided_by": user.get_username() if user is not None else "command line",
        "decided_at": timezone.now().isoformat(),
    }
    run.save(update_fields=["details"])


@transaction.atomic
def writeback_confirm(*, run_id: int, user: User | None) -> int:
    """An admin confirms a mass change the brake stopped: its rows are written by the next
    push (enqueued on commit). Returns the number of rows confirmed."""
    run = _held_run(run_id)
    confirmed = SalesforceWriteback.objects.filter(run=run, status=WritebackStatus.HELD).update(
        status=WritebackStatus.PENDING, confirmed=True, confirmed_by=user
    )
    _decide(run, user, "confirmed")
    enqueue_on_commit(tasks.salesforce_writeback_confirmed, run_id=run.pk)
    return confirmed


@transaction.atomic
def writeback_cancel(*, run_id: int, user: User | None) -> int:
    """An admin declines a mass change the brake stopped: nothing of it is written; each
    row says so. Portfolio keeps its values, Salesforce keeps its own."""
    run = _held_run(run_id)
    who = user.get_username() if user is not None else "command line"
    cancelled = SalesforceWriteback.objects.filter(run=run, status=WritebackStatus.HELD).update(
        status=WritebackStatus.DISCARDED,
        error=f"Not written: {who} declined the mass change held by run {run.pk}.",
    )
    _decide(run, user, "cancelled")
    return cancelled


@transaction.atomic
def writeback_resolve(*, writeback_id: int, keep: str, user: User) -> None:
    """An admin settles a conflict. `keep="salesforce"`: Portfolio takes Salesforce's value
    (the account's field and its last read), nothing is written. `keep="portfolio"`:
    Portfolio's value is written over Salesforce's, by a push enqueued on commit."""
    row = (
        SalesforceWriteback.objects.select_for_update()
        .select_related("account")
        .get(pk=writeback_id)
    )
    if row.status != WritebackStatus.CONFLICT:
        raise ValueError("This change is not in conflict any more.")
    account = row.account
    name = WritebackField(row.field)
    seen = row.salesforce_value
    if keep == "salesforce":
        update: dict[str, Any] = {
            LAST_READ[name]: int(seen) if name == "priority" and seen else seen
        }
        if name == WritebackField.TAM:
            match = SalesforceUser.objects.filter(salesforce_id=seen).values("user_id").first()
            update["tam_id"] = match["user_id"] if match else None
        elif name == WritebackField.HEALTH:
            update["health"] = seen
        else:
            update["priority"] = int(seen) if seen else None
        with pghistory.context(user=user.pk, reason="Kept Salesforce's value in a conflict"):
            Account.objects.filter(pk=account.pk).update(**update, updated_at=timezone.now())
        row.status = WritebackStatus.DISCARDED
        row.error = f"{user.get_username()} kept Salesforce's value ({seen or 'empty'})."
        row.save(update_fields=["status", "error", "updated_at"])
        return
    if keep != "portfolio":
        raise ValueError("keep must be 'salesforce' or 'portfolio'.")
    row.base_value = seen
    row.status = WritebackStatus.PENDING
    row.salesforce_value = ""
    row.error = ""
    row.confirmed = True
    row.confirmed_by = user
    row.origin_detail = (
        f"{user.get_username()} chose Portfolio's value over Salesforce's ({seen or 'empty'})"[:255]
    )
    row.save(
        update_fields=[
            "base_value",
            "status",
            "salesforce_value",
            "error",
            "confirmed",
            "confirmed_by",
            "origin_detail",
            "updated_at",
        ]
    )
    _push_on_commit([account.pk])


def label_rows(rows: list) -> list:
    """Give each row `labels` (base, value, salesforce) as people read them: "Amber",
    "P1", the TAM's name; one query for the Salesforce users' names."""
    user_ids = {
        v
        for row in rows
        if row.field == WritebackField.TAM
        for v in (row.base_value, row.value, row.salesforce_value)
        if v
    }
    names = (
        dict(
            SalesforceUser.objects.filter(salesforce_id__in=user_ids).values_list(
                "salesforce_id", "name"
            )
        )
        if user_ids
        else {}
    )

    def label(name: str, value: str) -> str:
        if not value:
            return "(empty)"
        if name == WritebackField.HEALTH:
            return value.capitalize()
        if name == WritebackField.PRIORITY:
            return f"P{value}"
        return names.get(value, value)

    for row in rows:
        row.labels = {
            "base": label(row.field, row.base_value),
            "value": label(row.field, row.value),
            "salesforce": label(row.field, row.salesforce_value),
        }
    return rows
