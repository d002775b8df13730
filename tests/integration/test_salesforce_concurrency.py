"""One Salesforce sync at a time (advisory lock); none duplicates anything."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from integrations.models import SyncRun, SyncStatus
from portfolio.models import Account, Region
from portfolio.sync.run import LOCK_KEY, sync_salesforce


def _lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
            [LOCK_KEY & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_a_second_run_is_skipped_while_the_first_holds_the_lock(fake_salesforce):
    Region.objects.get_or_create(code="APAC", defaults={"name": "Asia Pacific"})  # flushed
    for i in range(20):
        fake_salesforce.add(
            "Account", Name=f"A{i}", ARR__c=1.0, Region__c="APAC", Sales_Segment__c="Commercial"
        )
    fake_salesforce.page_size = 5
    outcomes = []

    def first() -> None:
        try:
            outcomes.append(sync_salesforce(trigger="first"))
        finally:
            connection.close()

    fake_salesforce.pause()  # the first run will hang on its first request, holding the lock
    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 20
    while not _lock_held():
        assert time.monotonic() < deadline, "first run never took the lock"
        time.sleep(0.05)

    second = sync_salesforce(trigger="second")
    fake_salesforce.resume()
    thread.join(timeout=60)

    assert second.run is None and "another Salesforce sync is running" in second.summary()
    assert outcomes[0].run.status == SyncStatus.SUCCEEDED
    # The skipped run leaves a finished `skipped` row (issue 11), nothing else.
    assert sorted(SyncRun.objects.values_list("trigger", "status")) == [
        ("first", SyncStatus.SUCCEEDED),
        ("second", SyncStatus.SKIPPED),
    ]
    assert Account.objects.count() == 20
    # Once the first is done, the next run goes ahead and duplicates nothing.
    third = sync_salesforce(full=True).run
    assert (third.created_count, third.unchanged_count) == (0, 20)
    assert Account.objects.count() == 20
