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
  wait: it is skipped (the 15-minute schedule will come round again); a killed worker's
  lock dies with its connection, and the next run resumes from the committed cursor.
- TAM, health and priority are merged three ways with the values Salesforce last had
  (`salesforce_tam_id`, `salesforce_health`, `salesforce_priority`): Salesforce's new value
  is taken only when Portfolio had no change of its own waiting to be written back.
- Parent, owner, opportunity-account links and user matching (by email) are resolved
  set-based after each run.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pghistory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.models import NOT_PROVIDED, F, Model
from django.utils import timezone

from integrations import salesforce
from integrations.models import QuarantinedRecord, Source, SyncCursor, SyncRun, SyncStatus
from portfolio.models import Account, Health, Opportunity, Region, SalesforceUser, Segment

logger = logging.getLogger(__name__)

LOCK_KEY = zlib.crc32(b"portfolio.sync.salesforce")
MAX_ARR = Decimal("999999999999.99")  # numeric(14, 2)
MAX_INT = 2_147_483_647

Progress = Callable[[str, int, int], None]  # (object name, records done, total)


class Rejected(Exception):
    """A record that cannot be stored; the message is the reason shown to people."""


# --- field parsing -------------------------------------------------------------------------


def _text(record: dict, name: str, *, max_length: int, required: bool = False) -> str:
    value = record.get(name)
    if type(value) is str and 0 < len(value) <= max_length:
        return value  # the common case, first
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is empty. Fill it in on the Salesforce record.")
        return ""
    value = str(value)
    if len(value) > max_length:
        raise Rejected(
            f"{name} is {len(value)} characters long; Portfolio keeps at most {max_length}. "
            "Shorten it in Salesforce."
        )
    return value


def _decimal(record: dict, name: str, *, maximum: Decimal = MAX_ARR) -> Decimal | None:
    value = record.get(name)
    if type(value) is Decimal and 0 <= value <= maximum:
        return value  # the common case, first
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Rejected(f"{name} is {value!r}, which is not a number. Correct it in Salesforce.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise Rejected(
            f"{name} is {value!r}, which is not a number. Correct it in Salesforce; the next "
            "sync stores the record."
        ) from None
    if not number.is_finite() or number < 0 or number > maximum:
        raise Rejected(
            f"{name} is {value!r}; it must be between 0 and {maximum}. Correct it in Salesforce."
        )
    return number


def _integer(record: dict, name: str, *, low: int = 0, high: int = MAX_INT) -> int | None:
    value = record.get(name)
    if type(value) is int and low <= value <= high:
        return value  # the common case, first
    number = _decimal(record, name, maximum=Decimal(high))
    if number is None:
        return None
    if number != number.to_integral_value() or not low <= number <= high:
        raise Rejected(
            f"{name} is {record.get(name)!r}; it must be a whole number from {low} to {high}. "
            "Correct it in Salesforce."
        )
    return int(number)


def _date(record: dict, name: str, *, required: bool = False) -> dt.date | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise Rejected(f"{name} is empty. Fill it in on the Salesforce record.")
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Rejected(
            f"{name} is {value!r}, which is not a real date (expected YYYY-MM-DD). Correct it "
            "in Salesforce; the next sync stores the record."
        ) from None


def _bool(record: dict, name: str) -> bool:
    value = record.get(name)
    if value is True or value is False:
        return value
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise Rejected(f"{name} is {value!r}, which is not true or false. Correct it in Salesforce.")


def _modstamp(record: dict) -> dt.datetime:
    value = record.get("SystemModstamp")
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(f"SystemModstamp is {value!r}, which is not a timestamp.") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp


def _record_id(record: dict, obj: str) -> str:
    value = record.get("Id")
    if not value:
        raise Rejected(
            f"Missing Id: Salesforce returned this {obj} without an Id, so it cannot be matched "
            "to a Portfolio record. Check the sync user's access to the Id field; this entry "
            "stays open until it is resolved in admin."
        )
    if len(str(value)) > 18:
        raise Rejected(f"Id {value!r} is longer than 18 characters; not a Salesforce Id.")
    return str(value)


def _lookup(record: dict, name: str) -> str:
    return _text(record, name, max_length=18)


SEGMENTS = (
    {label.lower(): value for value, label in Segment.choices}
    | {label: value for value, label in Segment.choices}
    | {value: value for value in Segment.values}
)
HEALTH = {value: value for value in Health.values} | {
    label: value for value, label in Health.choices
}


# --- objects -------------------------------------------------------------------------------


@dataclass
class ObjectSpec:
    name: str
    model: type[Model]
    fields: Callable[[], list[str]]
    columns: list[tuple[str, str]]  # staging table: (column, SQL type)
    parse: Callable[[dict, SyncContext], tuple]
    upsert_sql: Callable[[], str]


@dataclass
class SyncContext:
    regions: dict[str, str]
    # Per object: may open quarantine rows exist? (skips the resolve UPDATE when not)
    open_quarantine: dict[str, bool] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds, for the run details


def _user_fields() -> list[str]:
    return ["Id", "Name", "Email", "SystemModstamp"]


def _parse_user(record: dict, ctx: SyncContext) -> tuple:
    return (
        _record_id(record, "User"),
        _text(record, "Name", max_length=200) or str(record.get("Id")),
        _text(record, "Email", max_length=254).strip(),
        _modstamp(record),
    )


def _account_fields() -> list[str]:
    f = settings.SALESFORCE_FIELDS
    return [
        "Id",
        "Name",
        "ParentId",
        "OwnerId",
        f["account_arr"],
        f["account_region"],
        f["account_segment"],
        f["account_tam"],
        f["account_health"],
        f["account_priority"],
        f["account_renewal_date"],
        f["account_customer_since"],
        f["account_plan"],
        f["account_digital_only"],
        f["account_lam"],
        f["account_licensed_seats"],
        "SystemModstamp",
    ]


def _parse_account(record: dict, ctx: SyncContext) -> tuple:
    f = settings.SALESFORCE_FIELDS
    salesforce_id = _record_id(record, "Account")
    region_raw = record.get(f["account_region"])
    region = (ctx.regions.get(region_raw) if type(region_raw) is str else None) or ctx.regions.get(
        str(region_raw or "").strip().upper()
    )
    if region is None:
        raise Rejected(
            f"{f['account_region']} is {region_raw!r}, which is not a Portfolio region "
            f"(known: {', '.join(sorted(ctx.regions.values()))}). Correct the region in "
            "Salesforce, or add it under Regions in Portfolio admin and run "
            "`manage.py sync_salesforce --full`."
        )
    segment_raw = record.get(f["account_segment"])
    segment = (SEGMENTS.get(segment_raw) if type(segment_raw) is str else None) or SEGMENTS.get(
        str(segment_raw or "").strip().lower()
    )
    if segment is None:
        raise Rejected(
            f"{f['account_segment']} is {segment_raw!r}, which is not a known segment "
            f"({', '.join(Segment.labels)}). Correct the segment in Salesforce."
        )
    health_raw = record.get(f["account_health"])
    health = (HEALTH.get(health_raw) if type(health_raw) is str else None) if health_raw else ""
    if health is None:
        health = HEALTH.get(str(health_raw).strip().lower())
    if health is None:
        raise Rejected(
            f"{f['account_health']} is {health_raw!r}; expected Green, Yellow, Amber or Red. "
            "Correct it in Salesforce."
        )
    priority_raw = record.get(f["account_priority"])
    if isinstance(priority_raw, str) and priority_raw.upper().startswith("P"):
        record = {**record, f["account_priority"]: priority_raw[1:]}
    priority = _integer(record, f["account_priority"], low=1, high=4)
    return (
        salesforce_id,
        _text(record, "Name", max_length=255, required=True),
        _lookup(record, "ParentId"),
        _lookup(record, "OwnerId"),
        _decimal(record, f["account_arr"]) or Decimal(0),
        region,
        segment,
        _lookup(record, f["account_tam"]),
        health,
        priority,
        _date(record, f["account_renewal_date"]),
        _date(record, f["account_customer_since"]),
        _text(record, f["account_plan"], max_length=50),
        _bool(record, f["account_digital_only"]),
        _integer(record, f["account_lam"]),
        _integer(record, f["account_licensed_seats"]),
        _modstamp(record),
    )


def _opportunity_fields() -> list[str]:
    return [
        "Id",
        "AccountId",
        "Name",
        "Type",
        "StageName",
        "CloseDate",
        "Amount",
        "IsClosed",
        "IsWon",
        "SystemModstamp",
    ]


def _parse_opportunity(record: dict, ctx: SyncContext) -> tuple:
    return (
        _record_id(record, "Opportunity"),
        _lookup(record, "AccountId"),
        _text(record, "Name", max_length=255, required=True),
        _text(record, "Type", max_length=80),
        _text(record, "StageName", max_length=80),
        _date(record, "CloseDate"),
        _decimal(record, "Amount"),
        _bool(record, "IsClosed"),
        _bool(record, "IsWon"),
        _modstamp(record),
    )


def _defaults(model: type[Model], given: Iterable[str]) -> tuple[list[str], list[Any]]:
    """Columns the sync does not set, with their Django defaults (INSERT needs NOT NULLs)."""
    given = set(given)
    columns, values = [], []
    now = timezone.now()
    for f in model._meta.concrete_fields:
        if f.primary_key or f.column in given:
            continue
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            columns.append(f.column)
            values.append(now)
        elif f.default is not NOT_PROVIDED:
            columns.append(f.column)
            values.append(f.get_db_prep_save(f.get_default(), connection))
    return columns, values


def _insert_sql(
    *, table: str, stage: str, select: dict[str, str], joins: str, model: type[Model]
) -> tuple[str, list[str], list[Any]]:
    extra_cols, extra_values = _defaults(model, select)
    cols = [*select, *extra_cols]
    exprs = [*select.values(), *(["%s"] * len(extra_cols))]
    sql = (
        f"INSERT INTO {table} AS t ({', '.join(cols)}) "
        f"SELECT {', '.join(exprs)} FROM {stage} s {joins} "
    )
    return sql, cols, extra_values


def _account_upsert() -> tuple[str, list[Any]]:
    sql, _, params = _insert_sql(
        table="portfolio_account",
        stage="sf_stage_account",
        model=Account,
        select={
            "salesforce_id": "s.salesforce_id",
            "name": "s.name",
            "parent_salesforce_id": "s.parent_salesforce_id",
            "parent_id": "p.id",
            "owner_salesforce_id": "s.owner_salesforce_id",
            "owner_id": "ou.id",
            "arr": "s.arr",
            "region_id": "s.region_id",
            "segment": "s.segment",
            "salesforce_tam_id": "s.salesforce_tam_id",
            "tam_id": "tu.user_id",
            "salesforce_health": "s.salesforce_health",
            "health": "s.salesforce_health",
            "salesforce_priority": "s.salesforce_priority",
            "priority": "s.salesforce_priority",
            "renewal_date": "s.renewal_date",
            "customer_since": "s.customer_since",
            "plan": "s.plan",
            "digital_only": "s.digital_only",
            "lam": "s.lam",
            "licensed_seats": "s.licensed_seats",
            "salesforce_modstamp": "s.salesforce_modstamp",
            "synced_at": "now()",
        },
        joins=(
            "LEFT JOIN portfolio_account p ON p.salesforce_id = s.parent_salesforce_id "
            "LEFT JOIN portfolio_salesforceuser ou ON ou.salesforce_id = s.owner_salesforce_id "
            "LEFT JOIN portfolio_salesforceuser tu ON tu.salesforce_id = s.salesforce_tam_id"
        ),
    )
    plain = [
        "name",
        "parent_salesforce_id",
        "parent_id",
        "owner_salesforce_id",
        "owner_id",
        "arr",
        "region_id",
        "segment",
        "renewal_date",
        "customer_since",
        "plan",
        "digital_only",
        "lam",
        "licensed_seats",
        "salesforce_tam_id",
        "salesforce_health",
        "salesforce_priority",
    ]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        # Take Salesforce's TAM/health/priority only where Portfolio had no pending change.
        "tam_id = CASE WHEN t.tam_id IS NOT DISTINCT FROM (SELECT u.user_id FROM "
        "portfolio_salesforceuser u WHERE u.salesforce_id = t.salesforce_tam_id) "
        "THEN EXCLUDED.tam_id ELSE t.tam_id END",
        "health = CASE WHEN t.health = t.salesforce_health THEN EXCLUDED.health ELSE t.health END",
        "priority = CASE WHEN t.priority IS NOT DISTINCT FROM t.salesforce_priority "
        "THEN EXCLUDED.priority ELSE t.priority END",
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp",
        "synced_at = EXCLUDED.synced_at",
        "updated_at = EXCLUDED.updated_at",
    ]
    return sql + _on_conflict(sets, plain), params


def _on_conflict(sets: list[str], compared: list[str]) -> str:
    return (
        f"ON CONFLICT (salesforce_id) DO UPDATE SET {', '.join(sets)} "
        f"WHERE ({', '.join('t.' + c for c in compared)}) IS DISTINCT FROM "
        f"({', '.join('EXCLUDED.' + c for c in compared)}) "
        # An older version of a record (e.g. a late page) never overwrites a newer one.
        "AND (t.salesforce_modstamp IS NULL "
        "OR EXCLUDED.salesforce_modstamp >= t.salesforce_modstamp) "
        "RETURNING (xmax = 0)"
    )


def _opportunity_upsert() -> tuple[str, list[Any]]:
    sql, _, params = _insert_sql(
        table="portfolio_opportunity",
        stage="sf_stage_opportunity",
        model=Opportunity,
        select={
            "salesforce_id": "s.salesforce_id",
            "account_salesforce_id": "s.account_salesforce_id",
            "account_id": "a.id",
            "name": "s.name",
            "type": "s.type",
            "stage_name": "s.stage_name",
            "close_date": "s.close_date",
            "amount": "s.amount",
            "is_closed": "s.is_closed",
            "is_won": "s.is_won",
            "salesforce_modstamp": "s.salesforce_modstamp",
            "synced_at": "now()",
        },
        joins="LEFT JOIN portfolio_account a ON a.salesforce_id = s.account_salesforce_id",
    )
    plain = [
        "account_salesforce_id",
        "account_id",
        "name",
        "type",
        "stage_name",
        "close_date",
        "amount",
        "is_closed",
        "is_won",
    ]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp",
        "synced_at = EXCLUDED.synced_at",
    ]
    return sql + _on_conflict(sets, plain), params


def _user_upsert() -> tuple[str, list[Any]]:
    sql, _, params = _insert_sql(
        table="portfolio_salesforceuser",
        stage="sf_stage_user",
        model=SalesforceUser,
        select={
            "salesforce_id": "s.salesforce_id",
            "name": "s.name",
            "email": "s.email",
            "salesforce_modstamp": "s.salesforce_modstamp",
        },
        joins="",
    )
    plain = ["name", "email"]
    sets = [f"{c} = EXCLUDED.{c}" for c in plain] + [
        "salesforce_modstamp = EXCLUDED.salesforce_modstamp"
    ]
    return sql + _on_conflict(sets, plain), params


OBJECTS: list[ObjectSpec] = [
    ObjectSpec(
        name="User",
        model=SalesforceUser,
        fields=_user_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("name", "varchar(200)"),
            ("email", "varchar(254)"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_user,
        upsert_sql=_user_upsert,
    ),
    ObjectSpec(
        name="Account",
        model=Account,
        fields=_account_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("name", "varchar(255)"),
            ("parent_salesforce_id", "varchar(18)"),
            ("owner_salesforce_id", "varchar(18)"),
            ("arr", "numeric(14, 2)"),
            ("region_id", "varchar(20)"),
            ("segment", "varchar(20)"),
            ("salesforce_tam_id", "varchar(18)"),
            ("salesforce_health", "varchar(10)"),
            ("salesforce_priority", "smallint"),
            ("renewal_date", "date"),
            ("customer_since", "date"),
            ("plan", "varchar(50)"),
            ("digital_only", "boolean"),
            ("lam", "integer"),
            ("licensed_seats", "integer"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_account,
        upsert_sql=_account_upsert,
    ),
    ObjectSpec(
        name="Opportunity",
        model=Opportunity,
        fields=_opportunity_fields,
        columns=[
            ("salesforce_id", "varchar(18)"),
            ("account_salesforce_id", "varchar(18)"),
            ("name", "varchar(255)"),
            ("type", "varchar(80)"),
            ("stage_name", "varchar(80)"),
            ("close_date", "date"),
            ("amount", "numeric(14, 2)"),
            ("is_closed", "boolean"),
            ("is_won", "boolean"),
            ("salesforce_modstamp", "timestamptz"),
        ],
        parse=_parse_opportunity,
        upsert_sql=_opportunity_upsert,
    ),
]


def soql_for(spec: ObjectSpec, since: dt.datetime | None) -> str:
    where = ""
    if since is not None:
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        where = f" WHERE SystemModstamp >= {stamp}"
    return f"SELECT {', '.join(spec.fields())} FROM {spec.name}{where} ORDER BY SystemModstamp, Id"


# --- the run -------------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    """What `sync_salesforce` did: the run, or why there was none."""

    run: SyncRun | None
    skipped_reason: str = ""

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


def _try_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _unlock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def sync_salesforce(
    *, trigger: str = "manual", full: bool = False, progress: Progress | None = None
) -> SyncOutcome:
    """Run one Salesforce sync (see the module docstring). Returns the finished SyncRun, or
    no run when another sync holds the lock. Raises ImproperlyConfigured when Salesforce is
    not configured; a Salesforce failure ends the run `failed` with the error recorded."""
    client = salesforce.client()  # ImproperlyConfigured before any run row is written
    if not _try_lock():
        logger.info("Salesforce sync skipped: another run holds the lock")
        return SyncOutcome(run=None, skipped_reason="another Salesforce sync is running")
    try:
        # We hold the lock, so any run still marked running died with its worker.
        SyncRun.objects.filter(source=Source.SALESFORCE, status=SyncStatus.RUNNING).update(
            status=SyncStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker stopped before the run finished; the next run resumed from "
            "the last committed batch.",
        )
        run = SyncRun.objects.create(
            source=Source.SALESFORCE, started_at=timezone.now(), trigger=trigger
        )
        details: dict[str, Any] = {"objects": {}}
        try:
            with pghistory.context(sync_run=run.pk, source="salesforce"):
                ctx = SyncContext(
                    regions={code.upper(): code for code in _region_codes()},
                    open_quarantine=_open_quarantine(),
                )
                for spec in OBJECTS:
                    details["objects"][spec.name] = _sync_object(
                        client, run, spec, ctx, full=full, progress=progress
                    )
                started = time.perf_counter()
                details["links"] = _resolve_links()
                ctx.timings["links"] = time.perf_counter() - started
                details["timings_s"] = {k: round(v, 3) for k, v in ctx.timings.items()}
        except salesforce.ERRORS as exc:
            logger.warning("Salesforce sync run %s failed: %s", run.pk, salesforce.describe(exc))
            _finish(run, SyncStatus.FAILED, details, client, error=salesforce.describe(exc))
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
    finally:
        _unlock()


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


def _prefetched(pages: Iterator[salesforce.Page], depth: int = 2) -> Iterator[salesforce.Page]:
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
    client: salesforce.SalesforceClient,
    run: SyncRun,
    spec: ObjectSpec,
    ctx: SyncContext,
    *,
    full: bool,
    progress: Progress | None,
) -> dict[str, int]:
    cursor, _ = SyncCursor.objects.get_or_create(source=Source.SALESFORCE, object_name=spec.name)
    _create_stage(spec)
    since = None if full else cursor.position
    totals = _BatchResult()
    done = 0
    batch_size = max(1, settings.SALESFORCE_BATCH_SIZE)
    buffer: list[dict] = []
    total = 0
    started = time.monotonic()
    for page in _prefetched(client.query_pages(soql_for(spec, since))):
        total = page.total_size
        buffer.extend(page.records)
        while len(buffer) >= batch_size:
            _store(run, spec, ctx, cursor, buffer[:batch_size], totals)
            done += min(batch_size, len(buffer))
            buffer = buffer[batch_size:]
            if progress:
                progress(spec.name, done, total)
    if buffer:
        _store(run, spec, ctx, cursor, buffer, totals)
        done += len(buffer)
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
    return {
        "fetched": done,
        "created": totals.created,
        "updated": totals.updated,
        "unchanged": totals.unchanged,
        "quarantined": totals.quarantined,
    }


def _store(
    run: SyncRun,
    spec: ObjectSpec,
    ctx: SyncContext,
    cursor: SyncCursor,
    records: list[dict],
    totals: _BatchResult,
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
        _upsert_isolating(spec, list(rows.values()), raw, result, rejects)
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
) -> None:
    """Upsert the rows; if the database refuses the batch, split it until the refused
    record is alone, and quarantine that one with the database's reason."""
    if not rows:
        return
    try:
        with transaction.atomic():
            created, updated = _upsert(spec, rows)
    except DatabaseError as exc:
        if len(rows) == 1:
            sid = rows[0][0]
            message = str(exc).splitlines()[0]
            reason = f"The database refused this record: {message}"
            rejects.append((_payload(raw[sid]), sid, reason))
            return
        middle = len(rows) // 2
        _upsert_isolating(spec, rows[:middle], raw, result, rejects)
        _upsert_isolating(spec, rows[middle:], raw, result, rejects)
        return
    result.created += created
    result.updated += updated
    result.unchanged += len(rows) - created - updated
    result.stored_ids.extend(row[0] for row in rows)


def _create_stage(spec: ObjectSpec) -> None:
    """The session's staging table for this object (temporary: dies with the connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS sf_stage_{spec.name.lower()} "
            f"({', '.join(f'{n} {t}' for n, t in spec.columns)})"
        )


def _upsert(spec: ObjectSpec, rows: list[tuple]) -> tuple[int, int]:
    stage = f"sf_stage_{spec.name.lower()}"
    columns = ", ".join(name for name, _ in spec.columns)
    sql, params = spec.upsert_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {stage}")
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(sql, params)
        inserted = [flag for (flag,) in cursor.fetchall()]
    created = sum(1 for flag in inserted if flag)
    return created, len(inserted) - created


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
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _resolve_links() -> dict[str, int]:
    """Set-based after each run: match users by email, then owners, TAMs, parents and the
    opportunities' accounts. Each statement writes only rows whose link changes."""
    user_table = get_user_model()._meta.db_table
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH candidates AS (
                SELECT lower(email) AS email, min(id) AS user_id, count(*) AS n
                FROM {user_table} WHERE is_active AND email <> '' GROUP BY lower(email)
            )
            UPDATE portfolio_salesforceuser su SET user_id = c.user_id FROM candidates c
            WHERE su.user_id IS NULL AND su.email <> '' AND lower(su.email) = c.email
              AND c.n = 1
            RETURNING su.salesforce_id
            """
        )
        matched = [sid for (sid,) in cursor.fetchall()]
        counts["users_matched"] = len(matched)
        # A TAM whose Salesforce user was just matched: the account had no TAM because the
        # user was unknown, not because Portfolio removed one.
        cursor.execute(
            """
            UPDATE portfolio_account a SET tam_id = su.user_id
            FROM portfolio_salesforceuser su
            WHERE a.salesforce_tam_id = ANY(%s) AND su.salesforce_id = a.salesforce_tam_id
              AND a.tam_id IS NULL
            """,
            [matched],
        )
        counts["tams_linked"] = cursor.rowcount
        # The upserts link what they can; these catch links whose target arrived later
        # (a parent after its child, a user or account in a later run).
        cursor.execute(
            """
            UPDATE portfolio_account a SET owner_id = su.id FROM portfolio_salesforceuser su
            WHERE a.owner_id IS NULL AND a.owner_salesforce_id <> ''
              AND su.salesforce_id = a.owner_salesforce_id
            """
        )
        counts["owners_linked"] = cursor.rowcount
        cursor.execute(
            """
            UPDATE portfolio_account a SET parent_id = p.id FROM portfolio_account p
            WHERE a.parent_id IS NULL AND a.parent_salesforce_id <> ''
              AND p.salesforce_id = a.parent_salesforce_id
            """
        )
        counts["parents_linked"] = cursor.rowcount
        cursor.execute(
            """
            UPDATE portfolio_opportunity o SET account_id = a.id FROM portfolio_account a
            WHERE o.account_id IS NULL AND o.account_salesforce_id <> ''
              AND a.salesforce_id = o.account_salesforce_id
            """
        )
        counts["opportunities_linked"] = cursor.rowcount
    return counts
