"""Celery tasks of the portfolio app: they take ids, call a service, are safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

SALESFORCE_OFF = "Salesforce is not configured (SALESFORCE_ENABLED is False); nothing to do."


@shared_task(
    name="portfolio.salesforce_writeback",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def salesforce_writeback(*, account_ids: list[int]) -> str:
    """Push TAM / health / priority of these accounts where they differ from Salesforce."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    from portfolio.services import salesforce_writeback_push

    result = salesforce_writeback_push(account_ids=account_ids)
    return result.summary()


@shared_task(name="portfolio.sync_salesforce")
def sync_salesforce(*, full: bool = False, trigger: str = "schedule") -> str:
    """The 15-minute schedule (django-celery-beat, editable in admin): one incremental run.
    Safe to run twice: a second concurrent run is skipped by the advisory lock."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    from portfolio.sync import sync_salesforce as run_sync

    outcome = run_sync(trigger=trigger, full=full)
    if outcome.run is not None and outcome.run.created_count:
        _prioritise_new_accounts()
    return outcome.summary()


def _prioritise_new_accounts() -> None:
    """Accounts the sync just created have no priority yet: evaluate them now rather than
    at the next quarterly review (a new customer in onboarding is P1 from day one). Known
    accounts keep theirs until the quarterly review, as the handbook asks ("reviewed and
    updated quarterly")."""
    from portfolio.models import Account
    from prioritization.models import ReviewCause
    from prioritization.tasks import reevaluate_accounts

    ids = list(Account.objects.filter(priority__isnull=True).values_list("pk", flat=True))
    if ids:
        reevaluate_accounts.delay(ids, cause=ReviewCause.SYNC)


@shared_task(name="portfolio.salesforce_writeback_sweep")
def salesforce_writeback_sweep() -> str:
    """Periodic sweep: push every account whose TAM/health/priority differs from Salesforce
    (catches changes whose enqueued task was lost, or made while Salesforce was down)."""
    if not settings.SALESFORCE_ENABLED:
        logger.info(SALESFORCE_OFF)
        return SALESFORCE_OFF
    from portfolio.services import salesforce_writeback_push

    return salesforce_writeback_push(account_ids=None).summary()
