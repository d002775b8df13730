"""Celery tasks of the integrations app. Tasks take ids, call a service, are safe twice."""

from __future__ import annotations

from celery import shared_task

from integrations import services


@shared_task(name="integrations.heartbeat")
def heartbeat() -> str:
    """Record that a worker is alive (beat schedules it every minute)."""
    from celery import current_task

    hostname = current_task.request.hostname or "unknown"
    services.worker_heartbeat_record(hostname=hostname)
    return hostname
