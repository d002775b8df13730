"""Writes of the integrations app."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection
from django.utils import timezone

from integrations.models import SyncRun, SyncStatus, WorkerHeartbeat

logger = logging.getLogger(__name__)

WORKER_STOPPED = (
    "The worker stopped before the run finished; the next run resumed from what it had committed."
)


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


def sync_run_start(*, source: str, trigger: str) -> SyncRun:
    """A new run of `source`. Call it holding the source's lock (integrations.locks): any
    run of it still marked running then died with its worker, and is marked failed.

    The run records the PostgreSQL session that runs it (`details["backend_pid"]`): the
    session holds the source's lock, so once it is gone the run is dead, and
    `sync_runs_reap` marks it failed without waiting for the next run."""
    now = timezone.now()
    SyncRun.objects.filter(source=source, status=SyncStatus.RUNNING).update(
        status=SyncStatus.FAILED, finished_at=now, error=WORKER_STOPPED
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return SyncRun.objects.create(
        source=source, started_at=now, trigger=trigger, details={"backend_pid": pid}
    )


def sync_run_skip(*, source: str, trigger: str, reason: str) -> SyncRun:
    """A run that did nothing because another run of `source` holds its lock: a finished
    `skipped` row, so the sync-runs page shows that the schedule (or a click) came round."""
    now = timezone.now()
    return SyncRun.objects.create(
        source=source,
        started_at=now,
        finished_at=now,
        trigger=trigger,
        status=SyncStatus.SKIPPED,
        error=reason,
    )


def sync_runs_reap() -> list[int]:
    """Mark failed every run still `running` whose PostgreSQL session is gone (its worker
    was killed, or lost the database): the session held the source's lock, so nothing is
    running it any more. Returns the ids marked. Runs without a recorded session are left
    to the source's next run (`sync_run_start`)."""
    running = list(
        SyncRun.objects.filter(status=SyncStatus.RUNNING).values_list("pk", "started_at", "details")
    )
    candidates: dict[int, tuple[dt.datetime, int]] = {}
    for pk, started, details in running:
        pid = (details or {}).get("backend_pid")
        if isinstance(pid, int):
            candidates[pk] = (started, pid)
    if not candidates:
        return []
    pids = sorted({pid for _, pid in candidates.values()})
    with connection.cursor() as cursor:
        # backend_start guards against a pid reused by a newer session. Another role's
        # sessions show a NULL backend_start: counted alive (never reap what we cannot see).
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]
        )
        alive: dict[int, list[dt.datetime | None]] = {}
        for pid, backend_start in cursor.fetchall():
            alive.setdefault(pid, []).append(backend_start)
    dead = [
        pk
        for pk, (started, pid) in candidates.items()
        if not any(b is None or b <= started for b in alive.get(pid, []))
    ]
    if dead:
        SyncRun.objects.filter(pk__in=dead, status=SyncStatus.RUNNING).update(
            status=SyncStatus.FAILED, finished_at=timezone.now(), error=WORKER_STOPPED
        )
        logger.warning("Marked failed the runs %s: their worker stopped", dead)
    return dead
