"""A first full load into an empty table, loaded the way `pg_restore` loads.

PostgreSQL's manual ("Populating a Database"): "the fastest method is to create the table,
bulk load the table's data using COPY, then create any indexes needed for the table" and
"it might be faster to drop foreign key constraints, load the data, and re-create the
constraints", since a foreign key checks each new row one query at a time, where re-adding
it checks all of them in one.

So when a sync is about to store many records into an empty table, the table's secondary
indexes and foreign keys are set aside first and rebuilt once the object is loaded. What
stays in place is what the load itself relies on: the primary key and every unique index
(`ON CONFLICT (salesforce_id)` needs its own, and no duplicate may slip in meanwhile).

The batches still commit one by one, so a killed worker loses nothing of the load. The
definitions set aside are committed with the drops, on the object's SyncCursor; whoever
comes next restores them: the same run when the object is loaded (or fails), the next run
before it syncs anything if the worker died, and `migrate` before it touches the schema
(`before_migrate`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

from integrations.locks import SALESFORCE_SYNC_LOCK as LOCK_KEY
from integrations.locks import advisory_lock
from integrations.models import Source, SyncCursor

logger = logging.getLogger(__name__)

INDEX, FOREIGN_KEY = "index", "foreign key"


def set_aside(cursor: SyncCursor, table: str, *companions: str) -> list[str]:
    """Drop the secondary indexes and foreign keys of `table`, and of the `companions`
    (tables its rows fill by trigger, empty with it: an account's name for search), recording
    their definitions on `cursor` in the same transaction. Returns the names set aside."""
    with transaction.atomic(), connection.cursor() as c:
        c.execute(
            """
            SELECT %(index)s, i.indrelid::regclass::text, ic.relname,
                   pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = ANY(%(tables)s::regclass[]) AND NOT i.indisprimary
              AND NOT i.indisunique AND i.indisvalid
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                              AND k.conrelid = i.indrelid)
            UNION ALL
            SELECT %(fk)s, k.conrelid::regclass::text, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k
            WHERE k.conrelid = ANY(%(tables)s::regclass[]) AND k.contype = 'f'
              AND k.convalidated
            ORDER BY 1, 2, 3
            """,
            {"index": INDEX, "fk": FOREIGN_KEY, "tables": [table, *companions]},
        )
        deferred = [
            {"kind": kind, "table": owner, "name": name, "definition": definition}
            for kind, owner, name, definition in c.fetchall()
        ]
        if not deferred:
            return []
        SyncCursor.objects.filter(pk=cursor.pk).update(deferred_ddl=deferred)
        cursor.deferred_ddl = deferred
        quote = connection.ops.quote_name
        for item in deferred:
            if item["kind"] == INDEX:
                c.execute(f"DROP INDEX {quote(item['name'])}")
            else:
                owner, name = quote(item["table"]), quote(item["name"])
                c.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {name}")
    logger.info("Bulk load of %s: set aside %s", table, ", ".join(i["name"] for i in deferred))
    return [item["name"] for item in deferred]


def restore(cursor: SyncCursor) -> dict[str, Any]:
    """Rebuild what `set_aside` dropped, then forget it. Idempotent: what exists already is
    left alone. A foreign key whose rows no longer all match is added `NOT VALID` (checked
    for every new write, not for the old rows) and reported, so the load is never lost
    over it. Returns what was done, for the run's details."""
    deferred = list(cursor.deferred_ddl or [])
    if not deferred:
        return {}
    started = time.perf_counter()
    problems: list[str] = []
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as c:
        for item in deferred:
            if item["kind"] == INDEX:
                c.execute("SELECT to_regclass(%s) IS NULL", [item["name"]])
                if c.fetchone()[0]:
                    c.execute(item["definition"])
                continue
            table, name = quote(item["table"]), quote(item["name"])
            c.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = %s "
                "AND conrelid = %s::regclass)",
                [item["name"], item["table"]],
            )
            if not c.fetchone()[0]:
                continue
            c.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {item['definition']} NOT VALID")
            try:
                with transaction.atomic():
                    c.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
            except DatabaseError as exc:
                message = str(exc).splitlines()[0]
                problems.append(f"{item['name']}: {message}")
                logger.error(
                    "Bulk load of %s: foreign key %s left NOT VALID: %s",
                    item["table"],
                    item["name"],
                    message,
                )
        SyncCursor.objects.filter(pk=cursor.pk).update(deferred_ddl=[])
        cursor.deferred_ddl = []
    seconds = round(time.perf_counter() - started, 3)
    logger.info("Bulk load: rebuilt %d indexes and constraints in %.2fs", len(deferred), seconds)
    return {
        "rebuilt": [item["name"] for item in deferred],
        "seconds": seconds,
        "problems": problems,
    }


class Rebuild:
    """`restore(cursor)` on a database connection of its own, so that the next object
    loads while this one's indexes are built: neither needs a lock the other holds, as
    long as the next object has set its own indexes aside first (dropping a foreign key
    locks the table it references)."""

    def __init__(self, cursor: SyncCursor) -> None:
        self.cursor = cursor
        self.result: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if connection.in_atomic_block:
            # The caller's transaction holds the locks (and the rows) another connection
            # would wait for: rebuild here, in it.
            self.result = restore(self.cursor)
            return
        self._thread = threading.Thread(target=self._run, name="bulk-load-rebuild", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = restore(self.cursor)
        except Exception as exc:  # the definitions stay on the cursor for the next run
            logger.exception("Bulk load: rebuilding %s failed", self.cursor.object_name)
            self.result = {"error": f"{type(exc).__name__}: {exc} (the next run rebuilds)"}
        finally:
            connections.close_all()  # this thread's own connection

    def wait(self) -> dict[str, Any]:
        self.start()
        if self._thread is not None:
            self._thread.join()
        return self.result


def restore_all(source: str) -> dict[str, dict[str, Any]]:
    """Restore what a dead run left set aside, for every object of `source`. Call it only
    while holding the source's sync lock (no live run is loading)."""
    done = {}
    for cursor in SyncCursor.objects.filter(source=source).exclude(deferred_ddl=[]):
        done[cursor.object_name] = restore(cursor)
        logger.warning(
            "Restored the indexes and constraints a stopped %s load of %s had set aside",
            source,
            cursor.object_name,
        )
    return done


def set_aside_now() -> dict[str, dict[str, Any]]:
    """What bulk loads have set aside and not yet rebuilt, per object: the names, and
    whether a sync holds the lock (`loading`: a live load, which rebuilds them itself) or
    not (a stopped load: the periodic check and the next worker start rebuild them). For
    /healthz and the sync-runs page; two queries, takes no lock."""
    cursors = list(
        SyncCursor.objects.filter(source=Source.SALESFORCE)
        .exclude(deferred_ddl=[])
        .values_list("object_name", "deferred_ddl")
    )
    if not cursors:
        return {}
    with connection.cursor() as c:
        # A bigint advisory key shows in pg_locks as classid (high half) and objid (low).
        c.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
            "classid = %s AND objid = %s AND objsubid = 1 AND granted)",
            [(LOCK_KEY >> 32) & 0xFFFFFFFF, LOCK_KEY & 0xFFFFFFFF],
        )
        loading = bool(c.fetchone()[0])
    return {
        name: {"missing": [item["name"] for item in ddl or []], "loading": loading}
        for name, ddl in cursors
    }


def restore_if_idle() -> dict[str, dict[str, Any]]:
    """Rebuild what a stopped bulk load left aside, unless a sync is running (which then
    rebuilds it itself). The periodic check and worker start call it; cheap when there is
    nothing to do (one query, no lock)."""
    if not SyncCursor.objects.filter(source=Source.SALESFORCE).exclude(deferred_ddl=[]).exists():
        return {}
    with advisory_lock(LOCK_KEY) as held:
        if not held:
            logger.info("Set-aside indexes: a Salesforce sync is loading; it rebuilds them")
            return {}
        return restore_all(Source.SALESFORCE)


def before_migrate(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """`pre_migrate` receiver: a migration must find the indexes and keys it expects, so
    whatever a killed Salesforce bulk load left aside is rebuilt first. Not while a sync is
    running (it rebuilds its own at the end), nor before the cursor table has its column."""
    if using != DEFAULT_DB_ALIAS:
        return
    with connection.cursor() as c:
        c.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s AND column_name = 'deferred_ddl'",
            [SyncCursor._meta.db_table],
        )
        if c.fetchone() is None:
            return
        if (
            not SyncCursor.objects.filter(source=Source.SALESFORCE)
            .exclude(deferred_ddl=[])
            .exists()
        ):
            return
    with advisory_lock(LOCK_KEY) as held:
        if not held:
            logger.warning("migrate: a Salesforce sync is loading; it rebuilds its indexes")
            return
        restore_all(Source.SALESFORCE)
