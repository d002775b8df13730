"""Celery tasks of the portfolio app: they take ids, call a service, are safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from integrations.models import SyncRun
from portfolio import signals, writeback
from portfolio.models import Account
from portfolio.sync.run import sync_salesforce as run_sync

logger = logging.getLogger(__name__)

SALESFORCE_OFF = "Salesforce is not configured (SALESFORCE_ENABLED is False); nothing to do."


@shared_task(
    name="portfolio.salesforce_writeback",
    bind=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def salesforce_writeback(self, *, account_ids: list[int]) -> str:
    """Write back what Portfolio just decided for these accounts (portfolio.writeback).
    When another sweep holds the lock, try again in a minute (that sweep may not cover
    these changes); the 15-minute sweep is the backstop either way."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    result = writeback.writeback_push(account_ids=account_ids, trigger="change")
    if result.skipped:
        raise self.retry(countdown=60, max_retries=10)
    _continue(result)
    return result.summary()


@shared_task(name="portfolio.salesforce_writeback_sweep")
def salesforce_writeback_sweep() -> str:
    """Periodic sweep: write every pending change (catches changes whose enqueued task was
    lost, or made while Salesforce or the broker was down)."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    result = writeback.writeback_push(trigger="schedule")
    _continue(result)
    return result.summary()


@shared_task(name="portfolio.salesforce_writeback_confirmed")
def salesforce_writeback_confirmed(*, run_id: int) -> str:
    """Write the mass change an admin confirmed (the rows the brake held in `run_id`)."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    run = SyncRun.objects.get(pk=run_id)
    result = writeback.writeback_push(confirm_run=run, trigger="confirmed")
    if result.more:
        salesforce_writeback_confirmed.delay(run_id=run_id)
    return result.summary()


def _continue(result: writeback.WritebackResult) -> None:
    """A sweep that stopped at its time budget hands the rest to a new task, so no task
    comes near its time limit or the broker's visibility timeout."""
    if result.more:
        salesforce_writeback_sweep.delay()


@shared_task(name="portfolio.sync_salesforce")
def sync_salesforce(*, full: bool = False, trigger: str = "schedule") -> str:
    """The 15-minute schedule (django-celery-beat, editable in admin): one incremental run.
    Safe to run twice: a second concurrent run is skipped by the advisory lock."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    outcome = run_sync(trigger=trigger, full=full)
    if outcome.run is not None and outcome.run.created_count:
        _prioritise_new_accounts()
    return outcome.summary()


def _prioritise_new_accounts() -> None:
    """Accounts the sync just created have no priority yet: say so, and prioritization
    evaluates them (portfolio/signals.py)."""
    ids = list(Account.objects.filter(priority__isnull=True).values_list("pk", flat=True))
    if ids:
        signals.accounts_unprioritised.send(sender=sync_salesforce, account_ids=ids)
