"""Writes of the integrations app."""

from __future__ import annotations

from django.utils import timezone

from integrations.models import SyncRun, SyncStatus, WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


def sync_run_start(*, source: str, trigger: str) -> SyncRun:
    """A new run of `source`. Call it holding the source's lock (integrations.locks): any
    run of it still marked running then died with its worker, and is marked failed."""
    now = timezone.now()
    SyncRun.objects.filter(source=source, status=SyncStatus.RUNNING).update(
        status=SyncStatus.FAILED,
        finished_at=now,
        error="The worker stopped before the run finished; the next run resumed from "
        "what it had committed.",
    )
    return SyncRun.objects.create(source=source, started_at=now, trigger=trigger)
