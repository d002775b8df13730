"""Celery tasks of the integrations app. Tasks take ids, call a service, are safe twice."""

from __future__ import annotations

import logging

from celery import shared_task

from integrations import bulkload, services

logger = logging.getLogger(__name__)


@shared_task(name="integrations.heartbeat", bumps_data_version=False)
def heartbeat() -> str:
    """Record that a worker is alive (beat schedules it every minute)."""
    from celery import current_task

    hostname = current_task.request.hostname or "unknown"
    services.worker_heartbeat_record(hostname=hostname)
    return hostname


@shared_task(name="integrations.recover", bumps_data_version=False)
def recover() -> str:
    """What a killed worker or an interrupted load left behind, put right without waiting
    for the next sync (beat: every minute; also run when a worker starts): runs still
    `running` whose session is gone are marked failed, and indexes and foreign keys a
    stopped bulk load set aside are rebuilt (unless a sync is loading)."""
    reaped = services.sync_runs_reap()
    rebuilt = bulkload.restore_if_idle()
    return f"{len(reaped)} stopped runs marked failed; rebuilt set-aside DDL of {sorted(rebuilt)}"
