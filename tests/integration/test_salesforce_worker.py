"""The sync task on a real Celery worker; a worker killed mid-run loses nothing."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from integrations.models import SyncCursor, SyncRun, SyncStatus
from portfolio.models import Account, Region
from portfolio.sync.run import LOCK_KEY, sync_salesforce
from portfolio.tasks import sync_salesforce as sync_task
from prioritization.models import PriorityDecision
from tests.dbschema import schema_of

pytestmark = pytest.mark.worker


def seed_accounts(fake, n: int) -> None:
    # Transactional tests flush the regions the data migration seeded.
    Region.objects.get_or_create(code="LATAM", defaults={"name": "Latin America"})
    for i in range(n):
        fake.add(
            "Account",
            Name=f"Worker {i:03d}",
            ARR__c=1000.0 + i,
            Region__c="LATAM",
            Sales_Segment__c="Commercial",
        )


def test_the_sync_task_runs_on_a_real_worker(celery_worker, fake_salesforce):
    seed_accounts(fake_salesforce, 12)
    worker = celery_worker(fake_salesforce.worker_env())

    summary = sync_task.delay().get(timeout=60)

    assert "succeeded" in summary and "12 created" in summary
    assert Account.objects.count() == 12
    run = SyncRun.objects.get()
    assert run.trigger == "schedule" and run.status == SyncStatus.SUCCEEDED
    assert "portfolio.sync_salesforce" in worker.output()
    # The new accounts are prioritised by a follow-up task on the same worker.
    deadline = time.monotonic() + 60
    while Account.objects.filter(priority__isnull=True).exists():
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.2)
    assert PriorityDecision.objects.filter(cause="sync").count() == 12
    assert fake_salesforce.session_id not in worker.output()


def _wait_until_postgres_drops_the_dead_session(timeout: float = 20) -> None:
    """PostgreSQL ends the killed worker's backend (and frees its advisory lock) when it
    sees the closed socket, which on a loaded machine can take a moment after the kill."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if cursor.fetchone()[0]:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
                return
        time.sleep(0.05)
    raise AssertionError("the killed worker's database session still holds the sync lock")


@pytest.mark.parametrize("bulk", [False, True], ids=["batches", "bulk-load"])
def test_a_killed_worker_loses_nothing_and_the_next_run_resumes(
    celery_worker, fake_salesforce, bulk
):
    """Also when the worker dies during a bulk first load, with the table's indexes and
    foreign keys set aside: the next run rebuilds them before it syncs."""
    seed_accounts(fake_salesforce, 60)
    fake_salesforce.page_size = 5
    fake_salesforce.delay = 0.15  # 12 pages: the run takes a couple of seconds
    before = schema_of("portfolio_account")
    worker = celery_worker(
        {
            **fake_salesforce.worker_env(),
            "SALESFORCE_BATCH_SIZE": "5",
            "SALESFORCE_BULK_LOAD_MIN": "10" if bulk else "1000",
        }
    )

    sync_task.delay()
    deadline = time.monotonic() + 60
    while Account.objects.count() < 15:
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.05)
    worker.process.kill()  # SIGKILL mid-run: no cleanup, no finally
    worker.process.wait()
    _wait_until_postgres_drops_the_dead_session()

    stored = Account.objects.count()
    assert 15 <= stored < 60
    cursor = SyncCursor.objects.get(object_name="Account").position
    assert cursor is not None
    assert SyncRun.objects.get().status == SyncStatus.RUNNING  # died without finishing
    set_aside = SyncCursor.objects.get(object_name="Account").deferred_ddl
    assert bool(set_aside) is bulk
    assert (
        schema_of("portfolio_account") != before
    ) is bulk  # the dead load's indexes are still aside

    fake_salesforce.delay = 0
    fake_salesforce.requests.clear()
    outcome = sync_salesforce(trigger="after-kill")

    run = outcome.run
    assert run.status == SyncStatus.SUCCEEDED
    assert Account.objects.count() == 60  # nothing lost, nothing duplicated
    # Resumed from the committed cursor: only what was not stored yet (plus the boundary).
    assert run.details["objects"]["Account"]["fetched"] <= 60 - stored + 5
    assert run.created_count == 60 - stored
    dead = SyncRun.objects.exclude(pk=run.pk).get()
    assert dead.status == SyncStatus.FAILED and "worker stopped" in dead.error
    assert schema_of("portfolio_account") == before
    restored = run.details.get("restored_after_stopped_run", {})
    assert sorted(restored.get("Account", {}).get("rebuilt", [])) == sorted(
        item["name"] for item in set_aside
    )
