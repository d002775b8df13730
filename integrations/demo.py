"""Demo sync history for the sync-runs page (called by `manage.py load_demo`).

Deterministic and idempotent: the runs are keyed by their trigger "demo" and made only
once. They describe what a real week of 15-minute Salesforce syncs looks like; a real sync
(`manage.py sync_salesforce` with SALESFORCE_* set) adds real runs beside them.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from integrations.models import QuarantinedRecord, Source, SyncRun, SyncStatus


@transaction.atomic
def populate(*, stdout=None) -> None:
    if SyncRun.objects.filter(trigger="demo").exists():
        return
    rng = random.Random(3)  # nosec B311 # jitter and demo data, not security
    now = timezone.now().replace(second=0, microsecond=0)
    runs = []
    for i in range(12):
        started = now - dt.timedelta(minutes=15 * (12 - i))
        quarantined = 1 if i in (4, 9) else 0
        runs.append(
            SyncRun(
                source=Source.SALESFORCE,
                started_at=started,
                finished_at=started + dt.timedelta(seconds=rng.randint(3, 40)),
                status=SyncStatus.COMPLETED_WITH_ERRORS if quarantined else SyncStatus.SUCCEEDED,
                created_count=rng.randint(0, 4),
                updated_count=rng.randint(2, 60),
                unchanged_count=rng.randint(0, 3),
                quarantined_count=quarantined,
                trigger="demo",
            )
        )
    SyncRun.objects.bulk_create(runs)
    QuarantinedRecord.objects.bulk_create(
        [
            QuarantinedRecord(
                source=Source.SALESFORCE,
                object_name="Account",
                external_id="001DEMO000000042AA",
                payload={"Id": "001DEMO000000042AA", "Name": "Nimbus Freight", "Region__c": "MARS"},
                reason="Region__c is 'MARS', which is not a Portfolio region (known: APAC, EMEA, "
                "LATAM, US-EAST, US-WEST). Correct the region in Salesforce, or add it under "
                "Regions in Portfolio admin and run `manage.py sync_salesforce --full`.",
                sync_run=runs[9],
            ),
            QuarantinedRecord(
                source=Source.SALESFORCE,
                object_name="Account",
                external_id="001DEMO000000017AA",
                payload={"Id": "001DEMO000000017AA", "Name": "Orbit Labs", "ARR__c": "12k"},
                reason="ARR__c is '12k', which is not a number. Correct it in Salesforce; the "
                "next sync stores the record.",
                sync_run=runs[4],
            ),
        ]
    )
    if stdout is not None:
        stdout.write(f"integrations: {len(runs)} demo sync runs, 2 quarantined records")
