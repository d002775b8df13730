"""A task executed by a real `celery worker` process over real Redis, writing PostgreSQL."""

import pytest

from integrations.models import WorkerHeartbeat
from integrations.tasks import heartbeat

pytestmark = pytest.mark.worker


def test_a_real_worker_runs_a_task_and_writes_the_database(celery_worker):
    worker = celery_worker()
    result = heartbeat.apply_async()
    result.get(timeout=30)  # raises if the worker failed the task
    beat = WorkerHeartbeat.objects.get()
    assert worker.queue  # the task went through this worker's own queue
    assert "@" in beat.hostname
    assert "integrations.heartbeat" in worker.output()


def test_celery_is_configured_for_safe_redelivery():
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_url.startswith("redis")
