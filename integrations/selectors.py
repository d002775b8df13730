"""Reads of the integrations app: the sync-runs page."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT

from integrations import bulkload
from integrations.models import QuarantinedRecord, SyncRun, SyncStatus

RUNS_SHOWN = 50
QUARANTINE_SHOWN = 100
# Open quarantined records are counted exactly up to this many ("10,000+" beyond): a
# count of a million-row quarantine would cost more than the page.
QUARANTINE_COUNT_CAP = 10_000


def sync_runs_page(
    *, source: str | None = None, account_ids: QuerySet | None = None
) -> dict[str, Any]:
    """Latest runs and the newest open quarantined records (`QUARANTINE_SHOWN`, with their
    count up to `QUARANTINE_COUNT_CAP`): three queries whatever the history.

    `account_ids` (Salesforce ids, a queryset): the quarantined records shown are only
    those of these accounts and their opportunities (a manager sees their team's; the raw
    payloads of the rest of the company are for admins)."""
    runs_qs = SyncRun.objects.order_by("-started_at")
    quarantine_qs = QuarantinedRecord.objects.filter(resolved_at__isnull=True)
    if account_ids is not None:
        quarantine_qs = quarantine_qs.annotate(account_ref=KT("payload__AccountId")).filter(
            Q(external_id__in=account_ids) | Q(account_ref__in=account_ids)
        )
    if source:
        runs_qs = runs_qs.filter(source=source)
        quarantine_qs = quarantine_qs.filter(source=source)
    runs = list(runs_qs[:RUNS_SHOWN])
    quarantined = list(quarantine_qs.order_by("-created_at")[:QUARANTINE_SHOWN])
    total = quarantine_qs.order_by().values("pk")[: QUARANTINE_COUNT_CAP + 1].count()
    return {
        "runs": runs,
        "quarantined": quarantined,
        "quarantined_total": min(total, QUARANTINE_COUNT_CAP),
        "quarantined_capped": total > QUARANTINE_COUNT_CAP,
        "in_progress": any(run.status == SyncStatus.RUNNING for run in runs),
        "source": source or "",
        "set_aside_warnings": set_aside_warnings(set_aside_indexes()),
    }


def set_aside_indexes() -> dict[str, dict[str, Any]]:
    """Indexes and foreign keys a bulk load set aside and has not rebuilt, per object."""
    return bulkload.set_aside_now()


def set_aside_warnings(set_aside: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per object whose indexes are missing, for /healthz and the runs page."""
    lines = []
    for name, state in sorted(set_aside.items()):
        names = ", ".join(state["missing"])
        if state["loading"]:
            lines.append(
                f"{name}: {len(state['missing'])} indexes and foreign keys set aside while a "
                f"bulk load runs ({names}); the load rebuilds them when it ends."
            )
        else:
            lines.append(
                f"{name}: {len(state['missing'])} indexes and foreign keys missing, left aside "
                f"by a stopped bulk load ({names}); the periodic check rebuilds them within "
                "a minute, or the next sync or worker start does."
            )
    return lines
