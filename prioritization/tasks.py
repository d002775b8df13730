"""Celery tasks of the prioritization app: they take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from prioritization.models import ReviewCause
from prioritization.services import priorities_reevaluate


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def reevaluate_priorities_quarterly() -> dict:
    """The quarterly re-evaluation ("each account's priority should be reviewed and updated
    quarterly, coinciding with QBRs"); scheduled by django-celery-beat on day 1 of each
    fiscal quarter. Safe to run twice: the second run finds nothing changed."""
    result = priorities_reevaluate(cause=ReviewCause.QUARTERLY_REVIEW)
    return {"review_id": result.review_id, "evaluated": result.evaluated, "changed": result.changed}


@shared_task(acks_late=True)
def reevaluate_accounts(account_ids: list[int], cause: str = ReviewCause.SYNC) -> dict:
    """Re-evaluate some accounts (e.g. after a Salesforce sync changed them)."""
    result = priorities_reevaluate(cause=cause, account_ids=account_ids)
    return {"review_id": result.review_id, "evaluated": result.evaluated, "changed": result.changed}
