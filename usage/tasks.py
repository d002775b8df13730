"""Celery tasks of the usage app: they take ids, call a service, and are safe to run twice."""

from __future__ import annotations

from celery import shared_task

from integrations.enqueue import enqueue_on_commit
from triage.services.assessments import health_assess
from usage import services

# More touched accounts than this are left to the daily health run (05:30 UTC), which
# reads the same summary: a bulk import of the whole book must not queue a second full run.
ASSESS_NOW_MAX = 5_000


def usage_health_assess_enqueue(*, account_ids: list[int]) -> bool:
    """Re-assess the health of the accounts an import touched, after it commits."""
    if not account_ids or len(account_ids) > ASSESS_NOW_MAX:
        return False
    enqueue_on_commit(usage_health_assess, list(account_ids))
    return True


@shared_task(name="usage.health_assess")
def usage_health_assess(account_ids: list[int]) -> str:
    summary = health_assess(account_ids=account_ids)
    return (
        f"Health from usage: {summary.assessed} assessed, {summary.changed_suggestion} new "
        f"suggestions, {summary.changed_colour} colour changes"
    )


# Daily (seeded by migration 0002): they write nothing a page shows that was right before.
@shared_task(name="usage.orphans_purge", bumps_data_version=False)
def usage_orphans_purge() -> str:
    """The usage rows of deleted accounts (no foreign key removes them)."""
    return f"Usage rows of deleted accounts: {services.usage_orphans_purge():,} deleted"


@shared_task(name="usage.summaries_reconcile")
def usage_summaries_reconcile() -> str:
    """Stale summary rows (aged out, rows removed, a later month not summarised)."""
    return f"Usage summaries: {services.usage_summaries_reconcile():,} stale, refreshed"
