"""Salesforce -> Portfolio: pull User, Account and Opportunity incrementally.

DESIGN.md "Sync rules", implemented here:
- Incremental by `SystemModstamp` (`>=` the committed cursor, so records sharing the
  boundary stamp are fetched again and count as unchanged rather than being lost), pages
  followed through `nextRecordsUrl` and stored as they arrive.
- Each batch is one transaction: COPY into a temporary staging table, then
  `INSERT ... SELECT ... ON CONFLICT (salesforce_id) DO UPDATE ... WHERE (...) IS DISTINCT
  FROM (...)`, so an unchanged record writes nothing; `RETURNING (xmax = 0)` tells created
  from updated exactly. The cursor and the run's counts advance in the same transaction.
- A record that cannot be stored becomes a QuarantinedRecord with its raw payload and a
  reason a person can act on; a later run storing that record resolves the quarantine row.
  If the database still refuses a batch, it is split until the bad record is isolated.
- One run per source at a time: a PostgreSQL session advisory lock. A second run does not
  wait: it is skipped, and leaves a `skipped` row saying so (the 15-minute schedule will
  come round again); a killed worker's lock dies with its connection, its run is marked
  failed by `integrations.services.sync_runs_reap` (worker start, every minute) or by the
  next run, and the next run resumes from the committed cursor.
- Losing PostgreSQL mid-run raises `DatabaseLost` (one line, no traceback) after the run
  is marked failed on a fresh connection if the server answers again; if it does not, the
  reaper marks it once the server is back.
- TAM, health and priority are merged three ways with the values Salesforce last had
  (`salesforce_tam_id`, `salesforce_health`, `salesforce_priority`): Salesforce's new value
  is taken only when Portfolio had no change of its own waiting to be written back.
- Owners, TAMs, parents and opportunity accounts are linked in the upsert when the target
  is already stored; targets that arrive later, and users matched by email, are linked
  set-based after each run.
- History of ARR/TAM/health/priority is written by a statement-level trigger under
  `pghistory.context(sync_run=...)`; batches commit asynchronously (safe: the cursor
  commits with the rows, so a crash loses whole batches that the next run fetches again).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pghistory
import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from integrations import bulkload, salesforce
from integrations.locks import SALESFORCE_SYNC_LOCK, advisory_lock
from integrations.models import QuarantinedRecord, Source, SyncCursor, SyncRun, SyncStatus
from integrations.services import sync_run_skip, sync_run_start
from portfolio.models import Region
from portfolio.sync.objects import (
    OBJECTS,
    ObjectSpec,
    _create_stage,
    _resolve_links,
    _upsert,
    soql_for,
)
from portfolio.sync.records import Rejected, SyncContext, _modstamp

# Named after the package, as the sync's log lines were before the run moved here.
logger = logging.getLogger("portfolio.sync")

LOCK_KEY = SALESFORCE_SYNC_LOCK

Progress = Callable[[str, int, int], None]  # (object name, records done, total)


# --- the run -------------------------------------------------------------------------------

# Errors that mean the database session is gone (terminated, server down, network), not
# that the database refused a record.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class DatabaseLost(Exception):
    """The sync lost its PostgreSQL connection; the message is one line for the operator."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def failure_text(exc: BaseException) -> str:
    """What a Salesforce failure stores in `SyncRun.error`: status and code, plus the
    guidance the client attached to a fixed session that expired (401
    INVALID_SESSION_ID: which setting to change). Never a body or header of Salesforce's."""
    text = salesforce.describe(exc)
    guidance = getattr(exc, "content", None)
    if (
        isinstance(exc, salesforce.SalesforceExpiredSession)
        and not getattr(exc, "url", "")  # built by our client, not from a response
        and isinstance(guidance, str)
        and guidance
    ):
        text = f"{text}: {guidance}"
    return text


@dataclass
class SyncOutcome:
    """What `sync_salesforce` did: the run, or why there was none."""

    run: SyncRun | None
    skipped_reason: str = ""
    # The `skipped` row left when another run held the lock.
    skipped_run: SyncRun | None = None

    def summary(self) -> str:
        if self.run is None:
            return f"Salesforce sync skipped: {self.skipped_reason}"
        r = self.run
        seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at else 0.0
        text = (
            f"Salesforce sync run {r.pk} {r.status} in {seconds:.1f}s: {r.created_count} "
            f"created, {r.updated_count} updated, {r.unchanged_count} unchanged, "
            f"{r.quarantined_count} quarantined"
        )
        if r.error:
            text += f" ({r.error})"
        return text


@dataclass
class _BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    stored_ids: list[str] = field(default_factory=list)


def sync_salesforce(
    *, trigger: str = "manual", full: bool = False, progress: Progress | None = None
) -> SyncOutcome:
    """Run one Salesforce sync (see the module docstring). Returns the finished SyncRun, or
    no run (and a `skipped` row) when another sync holds the lock. Raises
    ImproperlyConfigured when Salesforce is not configured, DatabaseLost when PostgreSQL
    went away; a Salesforce failure ends the run `failed` with the error recorded."""
    client = salesforce.client()  # ImproperlyConfigured before any run row is written
    try:
        return _locked_run(client, trigger=trigger, full=full, progress=progress)
    except CONNECTION_LOST as exc:
        raise DatabaseLost(
            f"Salesforce sync stopped: lost the connection to PostgreSQL ({_first_line(exc)}). "
            "What was committed is kept and the next run resumes from it."
        ) from None


def _locked_run(
    client: salesforce.SalesforceClient, *, trigger: str, full: bool, progress: Progress | None
) -> SyncOutcome:
    with advisory_lock(LOCK_KEY) as held:
        if not held:
            logger.info("Salesforce sync skipped: another run holds the lock")
            reason = "another Salesforce sync is running"
            skipped = sync_run_skip(
                source=Source.SALESFORCE,
                trigger=trigger,
                reason=f"Skipped: {reason}; nothing was done.",
            )
            return SyncOutcome(run=None, skipped_reason=reason, skipped_run=skipped)
        # We hold the lock: whatever a dead run's bulk load had set aside is rebuilt before
        # anything else happens (and the dead run is marked failed).
        restored = bulkload.restore_all(Source.SALESFORCE)
        run = sync_run_start(source=Source.SALESFORCE, trigger=trigger)
        details: dict[str, Any] = {"objects": {}}
        if restored:
            details["restored_after_stopped_run"] = restored
        try:
            with pghistory.context(sync_run=run.pk, source="salesforce"):
                ctx = SyncContext(
                    regions={code.upper(): code for code in _region_codes()},
                    open_quarantine=_open_quarantine(),
                )
                cursors = {
                    spec.name: SyncCursor.objects.get_or_create(
                        source=Source.SALESFORCE, object_name=spec.name
                    )[0]
                    for spec in OBJECTS
                }
                queries = [
                    (spec.name, soql_for(spec, None if full else cursors[spec.name].position))
                    for spec in OBJECTS
                ]
                # One fetching thread runs ahead through every object, so the next object's
                # first pages arrive while this one's indexes are being rebuilt.
                stream = _prefetched(_pages_of(client, queries), depth=PREFETCH_PAGES)
                # An object's indexes are rebuilt in the background while the next object
                # loads, started once that one has set its own aside.
                rebuilds: list[tuple[str, bulkload.Rebuild]] = []
                try:
                    for spec in OBJECTS:
                        details["objects"][spec.name] = _sync_object(
                            run,
                            spec,
                            ctx,
                            cursors[spec.name],
                            _pages_for(stream, spec.name),
                            progress=progress,
                            after_first_page=rebuilds[-1][1].start if rebuilds else None,
                        )
                        if cursors[spec.name].deferred_ddl:
                            rebuilds.append((spec.name, bulkload.Rebuild(cursors[spec.name])))
                finally:
                    stream.close()
                    for name, rebuild in rebuilds:
                        done = rebuild.wait()
                        details["objects"][name]["bulk_load"].update(done)
                        ctx.timings["rebuild"] = ctx.timings.get("rebuild", 0.0) + done.get(
                            "seconds", 0.0
                        )
                started = time.perf_counter()
                details["links"] = _resolve_links()
                ctx.timings["links"] = time.perf_counter() - started
                details["timings_s"] = {k: round(v, 3) for k, v in ctx.timings.items()}
        except salesforce.ERRORS as exc:
            error = failure_text(exc)
            logger.warning("Salesforce sync run %s failed: %s", run.pk, error)
            _finish(run, SyncStatus.FAILED, details, client, error=error)
        except CONNECTION_LOST as exc:
            _finish_after_connection_loss(run, details, client, exc)
            raise
        except SoftTimeLimitExceeded:
            logger.error("Salesforce sync run %s stopped at its time limit", run.pk)
            _finish(
                run,
                SyncStatus.FAILED,
                details,
                client,
                error="Stopped at the task's time limit (CELERY_LONG_TASK_TIME_LIMIT); the "
                "next run resumes from what was committed.",
            )
            raise
        except Exception as exc:
            logger.exception("Salesforce sync run %s failed", run.pk)
            _finish(run, SyncStatus.FAILED, details, client, error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            run.refresh_from_db()
            status = (
                SyncStatus.COMPLETED_WITH_ERRORS if run.quarantined_count else SyncStatus.SUCCEEDED
            )
            _finish(run, status, details, client)
        return SyncOutcome(run=run)


def _finish_after_connection_loss(
    run: SyncRun, details: dict, client: Any, exc: BaseException
) -> None:
    """The session is gone: drop it, and mark the run failed on a new one if PostgreSQL
    answers; if it does not, the reaper marks it once it does (its session is gone)."""
    message = f"Lost the connection to PostgreSQL: {_first_line(exc)}"
    logger.error("Salesforce sync run %s failed: %s", run.pk, message)
    connection.close()
    try:
        _finish(run, SyncStatus.FAILED, details, client, error=message)
    except CONNECTION_LOST:
        logger.error("Salesforce sync run %s: PostgreSQL still unreachable", run.pk)
        connection.close()


def _open_quarantine() -> dict[str, bool]:
    names = set(
        QuarantinedRecord.objects.filter(source=Source.SALESFORCE, resolved_at__isnull=True)
        .values_list("object_name", flat=True)
        .distinct()
    )
    return {spec.name: spec.name in names for spec in OBJECTS}


def _region_codes() -> list[str]:
    return list(Region.objects.values_list("code", flat=True))


def _finish(run: SyncRun, status: str, details: dict, client: Any, error: str = "") -> None:
    details["api_usage"] = client.api_usage()
    details["retries"] = client.retries
    details["relogins"] = client.relogins
    SyncRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), error=error[:2000], details=details
    )
    run.refresh_from_db()


_DONE = object()

# Pages fetched ahead of the one being stored: 12 x 2,000 records, about 40 MB at most.
PREFETCH_PAGES = 12


def _pages_of(
    client: salesforce.SalesforceClient, queries: list[tuple[str, str]]
) -> Iterator[tuple[str, salesforce.Page | None]]:
    """Each object's pages in turn, each object ending with a `None` page."""
    for name, soql in queries:
        for page in client.query_pages(soql):
            yield name, page
        yield name, None


def _pages_for(
    stream: Iterator[tuple[str, salesforce.Page | None]], name: str
) -> Iterator[salesforce.Page]:
    """The pages of one object, taken from the stream of all of them."""
    for obj, page in stream:
        if obj != name:  # pragma: no cover - the objects are synced in the order fetched
            raise RuntimeError(f"expected {name} pages, got {obj}")
        if page is None:
            return
        yield page


def _prefetched(pages: Iterator[Any], depth: int) -> Generator[Any, None, None]:
    """Fetch the next pages in a background thread while the caller stores the current one,
    so the network and PostgreSQL work overlap. A fetch error is raised in the caller; if the
    caller stops early, the fetching thread stops at its next page."""
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    thread = threading.Thread(target=produce, name="salesforce-fetch", daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=1)


def _sync_object(
    run: SyncRun,
    spec: ObjectSpec,
    ctx: SyncContext,
    cursor: SyncCursor,
    pages: Iterator[salesforce.Page],
    *,
    progress: Progress | None,
    after_first_page: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Load one object's pages batch by batch. A bulk load (bulkload.py) that fails is
    rebuilt here; one that succeeds is left to the caller to rebuild (`deferred_ddl` set
    on the cursor)."""
    _create_stage(spec)
    totals = _BatchResult()
    done = 0
    batch_size = max(1, settings.SALESFORCE_BATCH_SIZE)
    buffer: list[dict] = []
    total = 0
    set_aside: list[str] | None = None  # decided on the first page, when the total is known
    bulk_load = False
    loaded = False
    started = time.monotonic()
    try:
        for page in pages:
            total = page.total_size
            if set_aside is None:
                set_aside = _set_aside_for_bulk_load(spec, cursor, total)
                bulk_load = bool(set_aside)
                if after_first_page:
                    after_first_page()
            buffer.extend(page.records)
            while len(buffer) >= batch_size:
                _store(run, spec, ctx, cursor, buffer[:batch_size], totals, expect_new=bulk_load)
                done += min(batch_size, len(buffer))
                buffer = buffer[batch_size:]
                if progress:
                    progress(spec.name, done, total)
        if buffer:
            _store(run, spec, ctx, cursor, buffer, totals, expect_new=bulk_load)
            done += len(buffer)
        loaded = True
    finally:
        if cursor.deferred_ddl and not loaded:
            bulkload.restore(cursor)  # before the error goes on
    if progress:
        progress(spec.name, done, total)
    logger.info(
        "Salesforce %s: %d fetched in %.1fs (%d created, %d updated, %d unchanged, %d quarantined)",
        spec.name,
        done,
        time.monotonic() - started,
        totals.created,
        totals.updated,
        totals.unchanged,
        totals.quarantined,
    )
    counts = {
        "fetched": done,
        "created": totals.created,
        "updated": totals.updated,
        "unchanged": totals.unchanged,
        "quarantined": totals.quarantined,
    }
    return {**counts, "bulk_load": {"set_aside": set_aside}} if bulk_load else counts


def _set_aside_for_bulk_load(spec: ObjectSpec, cursor: SyncCursor, total: int) -> list[str]:
    """Many records into an empty table: load it as `pg_restore` would (bulkload.py)."""
    if total < settings.SALESFORCE_BULK_LOAD_MIN or spec.model._base_manager.exists():
        return []
    return bulkload.set_aside(cursor, spec.model._meta.db_table, *spec.companions)


def _store(
    run: SyncRun,
    spec: ObjectSpec,
    ctx: SyncContext,
    cursor: SyncCursor,
    records: list[dict],
    totals: _BatchResult,
    *,
    expect_new: bool = False,
) -> None:
    """Validate, upsert, quarantine, advance the cursor and the counts: one transaction."""
    rows: dict[str, tuple] = {}
    raw: dict[str, dict] = {}
    rejects: list[tuple[dict, str, str]] = []  # (payload, external id, reason)
    newest: dt.datetime | None = None
    parse = spec.parse
    started = time.perf_counter()
    for record in records:
        try:
            row = parse(record, ctx)
        except Rejected as exc:
            rejects.append((_payload(record), str(record.get("Id") or ""), str(exc)))
            try:  # a rejected record still moves the cursor past it
                stamp = _modstamp(record)
                newest = stamp if newest is None or stamp > newest else newest
            except Rejected:
                pass
            continue
        rows[row[0]] = row  # a record twice in one batch: the later one wins
        raw[row[0]] = record
        stamp = row[-1]  # every parser ends with SystemModstamp
        if newest is None or stamp > newest:
            newest = stamp
    ctx.timings["parse"] = ctx.timings.get("parse", 0.0) + time.perf_counter() - started
    started = time.perf_counter()
    result = _BatchResult()
    with transaction.atomic():
        if connection.in_atomic_block and not connection.savepoint_ids:
            # Salesforce stays the source of truth and the cursor commits with the rows, so
            # a crash can only lose whole recent batches, which the next run fetches again.
            with connection.cursor() as c:
                c.execute("SET LOCAL synchronous_commit = off")
        _upsert_isolating(spec, list(rows.values()), raw, result, rejects, expect_new=expect_new)
        now = timezone.now()
        if result.stored_ids and ctx.open_quarantine.get(spec.name, True):
            QuarantinedRecord.objects.filter(
                source=Source.SALESFORCE,
                object_name=spec.name,
                external_id__in=result.stored_ids,
                resolved_at__isnull=True,
            ).update(resolved_at=now, resolved_by_run=run)
        _quarantine(run, spec.name, rejects)
        result.quarantined = len(rejects)
        if rejects:
            ctx.open_quarantine[spec.name] = True
        if newest is not None and (cursor.position is None or newest > cursor.position):
            SyncCursor.objects.filter(pk=cursor.pk).update(position=newest)
            cursor.position = newest
        SyncRun.objects.filter(pk=run.pk).update(
            created_count=F("created_count") + result.created,
            updated_count=F("updated_count") + result.updated,
            unchanged_count=F("unchanged_count") + result.unchanged,
            quarantined_count=F("quarantined_count") + result.quarantined,
        )
    ctx.timings["store"] = ctx.timings.get("store", 0.0) + time.perf_counter() - started
    totals.created += result.created
    totals.updated += result.updated
    totals.unchanged += result.unchanged
    totals.quarantined += result.quarantined


def _upsert_isolating(
    spec: ObjectSpec,
    rows: list[tuple],
    raw: dict[str, dict],
    result: _BatchResult,
    rejects: list[tuple[dict, str, str]],
    *,
    expect_new: bool,
) -> None:
    """Upsert the rows; if the database refuses the batch, split it until the refused
    record is alone, and quarantine that one with the database's reason."""
    if not rows:
        return
    try:
        with transaction.atomic():
            created, updated = _upsert(spec, rows, expect_new=expect_new)
    except CONNECTION_LOST:
        raise  # the session is gone: no record is to blame
    except (DatabaseError, psycopg.Error) as exc:
        if len(rows) == 1:
            sid = rows[0][0]
            message = str(exc).splitlines()[0]
            reason = f"The database refused this record: {message}"
            rejects.append((_payload(raw[sid]), sid, reason))
            return
        middle = len(rows) // 2
        _upsert_isolating(spec, rows[:middle], raw, result, rejects, expect_new=expect_new)
        _upsert_isolating(spec, rows[middle:], raw, result, rejects, expect_new=expect_new)
        return
    result.created += created
    result.updated += updated
    result.unchanged += len(rows) - created - updated
    result.stored_ids.extend(row[0] for row in rows)


def _quarantine(run: SyncRun, obj: str, rejects: list[tuple[dict, str, str]]) -> None:
    """One open row per rejected record: a record rejected again updates its open row."""
    if not rejects:
        return
    ids = [external_id for _, external_id, _ in rejects if external_id]
    open_rows = {
        q.external_id: q
        for q in QuarantinedRecord.objects.filter(
            source=Source.SALESFORCE,
            object_name=obj,
            external_id__in=ids,
            resolved_at__isnull=True,
        )
    }
    to_update, to_create = [], []
    for payload, external_id, reason in rejects:
        existing = open_rows.get(external_id) if external_id else None
        if existing is not None:
            existing.payload, existing.reason, existing.sync_run = payload, reason, run
            to_update.append(existing)
        else:
            to_create.append(
                QuarantinedRecord(
                    source=Source.SALESFORCE,
                    object_name=obj,
                    external_id=external_id,
                    payload=payload,
                    reason=reason,
                    sync_run=run,
                )
            )
    QuarantinedRecord.objects.bulk_update(to_update, ["payload", "reason", "sync_run"])
    QuarantinedRecord.objects.bulk_create(to_create)
    for _, external_id, reason in rejects:
        logger.warning("Salesforce %s %s quarantined: %s", obj, external_id or "(no Id)", reason)


def _payload(record: dict) -> dict:
    """The raw record as received, without the REST `attributes`, storable as JSON."""
    return _jsonable({k: v for k, v in record.items() if k != "attributes"})


def _jsonable(value: Any) -> Any:
    """JSON that PostgreSQL's jsonb accepts (no NaN, no NUL, no lone surrogates)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
