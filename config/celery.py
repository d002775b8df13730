"""The Celery application: Redis broker, beat schedules kept in the database.

Semantics (config/settings.py, docs/failure-modes-celery.md): late acks, a task of a
killed worker redelivered after CELERY_VISIBILITY_TIMEOUT, every task's hard time limit
below it. When a worker starts it first puts right what a killed one left (the
`integrations.recover` task's work: dead runs marked failed, set-aside indexes rebuilt).
"""

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)


class TimeLimits:
    """Task annotation: the known long tasks (settings.LONG_TASKS) get the long limits, and
    no task keeps limits of its own that reach the visibility timeout (it would be handed
    to a second worker while the first still runs it)."""

    def annotate(self, task: object) -> dict | None:
        from django.conf import settings

        if getattr(task, "name", "") in settings.LONG_TASKS:
            return dict(settings.LONG_TASK_LIMITS)
        own = [getattr(task, "time_limit", None), getattr(task, "soft_time_limit", None)]
        if any(limit and limit >= settings.CELERY_VISIBILITY_TIMEOUT for limit in own):
            logger.warning("Task %s: its time limits capped below the visibility timeout", task)
            return dict(settings.LONG_TASK_LIMITS)
        return None


app = Celery("portfolio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_annotations = (TimeLimits(),)
app.autodiscover_tasks()


@worker_ready.connect
def _recover_on_start(**kwargs: object) -> None:
    """A worker starting is often the one replacing a killed worker: do not leave its runs
    `running` and its set-aside indexes missing until the next beat tick or sync."""
    from django.db import connections

    from integrations.tasks import recover

    try:
        logger.info("Worker start: %s", recover.run())
    except Exception:  # a worker must start even if PostgreSQL is briefly away
        logger.exception("Worker start: recovery failed; the periodic check retries")
    finally:
        connections.close_all()
