"""Write-back of TAM, health and priority to Salesforce: only what Portfolio decided, never
over a change made in Salesforce, never a mass change without an admin, in batches."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from integrations.locks import advisory_lock
from integrations.models import Source, SyncRun, SyncStatus
from portfolio import writeback
from portfolio.models import Account, SalesforceWriteback, WritebackOrigin, WritebackStatus
from portfolio.services import salesforce_writeback_enqueue
from portfolio.sync.run import sync_salesforce
from portfolio.tasks import SALESFORCE_OFF, salesforce_writeback, salesforce_writeback_sweep
from prioritization.models import ReviewCause
from prioritization.services import priorities_reevaluate
from tests import factories

pytestmark = pytest.mark.django_db

TAM = "Technical_Account_Manager__c"


def _account(fake, name, **fields):
    values = {
        "Name": name,
        "ARR__c": 200000.0,
        "Region__c": "US-WEST",
        "Sales_Segment__c": "Enterprise",
        "Health_Score__c": "Green",
        "CSM_Priority__c": 2,
    }
    values.update(fields)
    return fake.add("Account", **values)


@pytest.fixture
def synced(fake_salesforce):
    """Two accounts pulled from the fake, their TAM matched by email."""
    tam = factories.UserFactory(role="TAM", email="tess@example.com")
    other = factories.UserFactory(role="TAM", email="otto@example.com")
    sf_tam = fake_salesforce.add("User", Name="Tess", Email="tess@example.com")
    sf_other = fake_salesforce.add("User", Name="Otto", Email="otto@example.com")
    records = [_account(fake_salesforce, f"Acme {i}", **{TAM: sf_tam["Id"]}) for i in range(2)]
    sync_salesforce()
    return {
        "tam": tam,
        "other": other,
        "sf_tam": sf_tam,
        "sf_other": sf_other,
        "records": records,
        "accounts": [Account.objects.get(salesforce_id=r["Id"]) for r in records],
    }


def _decide(account, *, origin=WritebackOrigin.HEALTH_ASSESSMENT, **changes):
    for name, value in changes.items():
        setattr(account, name, value)
    account.save(update_fields=list(changes))
    fields = ["tam" if name == "tam" else name for name in changes]
    return salesforce_writeback_enqueue(account_ids=[account.pk], fields=fields, origin=origin)


def test_a_first_sync_with_unmatched_users_writes_no_tam(fake_salesforce, settings):
    """Issue 11: the sync stores tam = NULL for a Salesforce TAM with no Portfolio login;
    that is not a change, so neither the sweep nor the follow-up prioritisation clears it."""
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 1000
    sf_users = [
        fake_salesforce.add("User", Name=f"U{i}", Email=f"u{i}@corp.example") for i in range(3)
    ]
    records = [
        _account(
            fake_salesforce, f"Customer {i}", **{TAM: sf_users[i % 3]["Id"]}, CSM_Priority__c=None
        )
        for i in range(30)
    ]
    sync_salesforce()
    assert Account.objects.filter(tam__isnull=True).count() == 30
    assert not SalesforceWriteback.objects.exists()

    result = writeback.writeback_push()
    assert result.run is None and fake_salesforce.write_calls() == 0

    # The sync task's follow-up: new accounts get a priority, which is a decision to write.
    priorities_reevaluate(
        account_ids=list(Account.objects.values_list("pk", flat=True)), cause=ReviewCause.SYNC
    )
    result = writeback.writeback_push()
    assert result.sent == 30
    assert {tuple(sorted(body)) for _, _, body in fake_salesforce.patches} == {("CSM_Priority__c",)}
    for record in records:
        assert fake_salesforce.get("Account", record["Id"])[TAM] == record[TAM]


def test_only_the_decided_fields_are_written_once(synced, fake_salesforce):
    account = synced["accounts"][0]
    _decide(account, health="red")
    row = SalesforceWriteback.objects.get(account=account)
    assert (row.field, row.base_value, row.value, row.status) == (
        "health",
        "green",
        "red",
        "pending",
    )
    assert row.origin == WritebackOrigin.HEALTH_ASSESSMENT
    result = writeback.writeback_push(account_ids=[account.pk])

    assert (result.sent, result.records) == (1, 1)
    assert fake_salesforce.patches == [
        ("Account", account.salesforce_id, {"Health_Score__c": "Red"})
    ]
    assert not SalesforceWriteback.objects.exists()  # written: nothing left to do
    assert result.run.source == Source.SALESFORCE_WRITEBACK
    assert (result.run.status, result.run.updated_count) == (SyncStatus.SUCCEEDED, 1)
    # A retried task sends nothing twice, and the next pull sees our own write as unchanged.
    assert writeback.writeback_push(account_ids=[account.pk]).run is None
    assert sync_salesforce().run.updated_count == 0
    account.refresh_from_db()
    assert (account.health, account.salesforce_health) == ("red", "red")


def test_a_tam_assigned_in_portfolio_is_written_with_its_salesforce_user(synced, fake_salesforce):
    account = synced["accounts"][1]
    _decide(account, origin=WritebackOrigin.TAM_ASSIGNMENT, tam=synced["other"])
    writeback.writeback_push()
    assert fake_salesforce.patches == [
        ("Account", account.salesforce_id, {TAM: synced["sf_other"]["Id"]})
    ]


def test_a_tam_without_a_salesforce_user_is_refused_with_the_reason(synced, fake_salesforce):
    stranger = factories.UserFactory(role="TAM", email="nobody@example.com")
    account = synced["accounts"][0]
    assert _decide(account, origin=WritebackOrigin.TAM_ASSIGNMENT, tam=stranger) == 0
    row = SalesforceWriteback.objects.get(account=account)
    assert row.status == WritebackStatus.REFUSED and "no Salesforce user" in row.error
    writeback.writeback_push()
    assert fake_salesforce.write_calls() == 0


def test_going_back_to_salesforces_value_writes_nothing(synced, fake_salesforce):
    account = synced["accounts"][0]
    _decide(account, health="red")
    _decide(account, health="green")
    assert not SalesforceWriteback.objects.exists()
    writeback.writeback_push()
    assert fake_salesforce.write_calls() == 0


def test_a_change_made_in_salesforce_meanwhile_is_a_conflict_not_overwritten(
    synced, fake_salesforce, client, django_capture_on_commit_callbacks
):
    mine, theirs = synced["accounts"]
    _decide(mine, health="red")
    _decide(theirs, health="amber")
    # Salesforce changes both after Portfolio decided: one pulled by a sync, one not yet.
    fake_salesforce.update("Account", mine.salesforce_id, Health_Score__c="Yellow")
    sync_salesforce()
    fake_salesforce.update(
        "Account", theirs.salesforce_id, Health_Score__c="Green", CSM_Priority__c=3
    )
    fake_salesforce.update("Account", theirs.salesforce_id, Health_Score__c="Yellow")

    result = writeback.writeback_push()

    assert fake_salesforce.write_calls() == 0
    assert result.conflicts == 2 and result.run.status == SyncStatus.COMPLETED_WITH_ERRORS
    rows = {r.account_id: r for r in SalesforceWriteback.objects.all()}
    assert (rows[mine.pk].status, rows[mine.pk].salesforce_value) == ("conflict", "yellow")
    assert (rows[theirs.pk].status, rows[theirs.pk].salesforce_value) == ("conflict", "yellow")
    mine.refresh_from_db()
    assert (mine.health, mine.salesforce_health) == ("red", "yellow")

    # The account page and the write-back page show both values; an admin settles them.
    admin = factories.UserFactory(role="Admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(f"/account/{mine.salesforce_id}/").content.decode()
    assert "Conflict" in page and "Yellow" in page and "Red" in page
    page = client.get("/integrations/sync-runs/writeback/").content.decode()
    assert mine.name in page and theirs.name in page

    response = client.post(
        f"/integrations/sync-runs/writeback/{rows[mine.pk].pk}/resolve", {"keep": "salesforce"}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.health == "yellow"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            f"/integrations/sync-runs/writeback/{rows[theirs.pk].pk}/resolve", {"keep": "portfolio"}
        )
    assert response.status_code == 302 and len(callbacks) == 1  # the push, on commit
    writeback.writeback_push()
    assert fake_salesforce.patches == [
        ("Account", theirs.salesforce_id, {"Health_Score__c": "Amber"})
    ]
    assert fake_salesforce.write_calls() == 1


def test_the_brake_stops_a_mass_change_until_an_admin_confirms(
    fake_salesforce, settings, client, capsys
):
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 3
    records = [_account(fake_salesforce, f"Book {i:02d}") for i in range(40)]
    sync_salesforce()
    accounts = list(Account.objects.order_by("pk"))
    for account in accounts[:6]:  # 6 of 40 = 15% > 5%
        account.priority = 1
    Account.objects.bulk_update(accounts[:6], ["priority"])
    salesforce_writeback_enqueue(
        account_ids=[a.pk for a in accounts[:6]], fields=["priority"], origin="priority_decision"
    )
    call_command("salesforce_writeback", "--dry-run")
    out = capsys.readouterr().out
    assert "CSM_Priority__c: 6 to send (0 clearing)" in out and "brake would stop" in out

    result = writeback.writeback_push()

    assert result.held and fake_salesforce.write_calls() == 0
    run = result.run
    assert run.status == SyncStatus.NEEDS_CONFIRMATION
    assert run.details["brake"]["fields"]["priority"] == {"changes": 6, "clears": 0}
    assert len(run.details["brake"]["sample"]) == 6
    # Another sweep leaves the held rows alone.
    assert writeback.writeback_push().run is None

    admin = factories.UserFactory(role="Admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get("/integrations/sync-runs/writeback/").content.decode()
    assert "Needs confirmation" in page and "6" in page
    response = client.post(f"/integrations/sync-runs/writeback/runs/{run.pk}/confirm")
    assert response.status_code == 302
    writeback.writeback_push(confirm_run=run)
    assert fake_salesforce.write_calls("collection") == 1
    assert sorted(i for _, i, _ in fake_salesforce.patches) == sorted(r["Id"] for r in records[:6])
    run.refresh_from_db()
    assert run.details["decided_by"] == admin.get_username()


def test_clearing_a_value_always_waits_for_confirmation(synced, fake_salesforce, capsys):
    account = synced["accounts"][0]
    _decide(account, origin=WritebackOrigin.TAM_ASSIGNMENT, tam=None)
    result = writeback.writeback_push()
    assert result.held and result.run.details["brake"]["fields"]["tam"]["clears"] == 1
    assert fake_salesforce.write_calls() == 0

    call_command("salesforce_writeback", "--confirm", str(result.run.pk))
    assert fake_salesforce.get("Account", account.salesforce_id)[TAM] is None
    assert "1 change(s) confirmed" in capsys.readouterr().out


def test_a_declined_mass_change_is_never_written(synced, fake_salesforce):
    account = synced["accounts"][0]
    _decide(account, origin=WritebackOrigin.TAM_ASSIGNMENT, tam=None)
    run = writeback.writeback_push().run
    writeback.writeback_cancel(run_id=run.pk, user=None)
    assert writeback.writeback_push().run is None
    row = SalesforceWriteback.objects.get(account=account)
    assert row.status == WritebackStatus.DISCARDED and "declined" in row.error
    with pytest.raises(ValueError, match="already cancelled"):
        writeback.writeback_confirm(run_id=run.pk, user=None)


def test_writes_go_in_collections_of_200_with_per_record_results(fake_salesforce, settings):
    settings.SALESFORCE_WRITEBACK_BRAKE_SHARE = 1.0
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 10_000
    records = [_account(fake_salesforce, f"Bulk {i:03d}") for i in range(450)]
    sync_salesforce()
    Account.objects.update(health="amber")
    ids = list(Account.objects.order_by("pk").values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["health"], origin="health_assessment")
    deleted, invalid, locked = records[0]["Id"], records[1]["Id"], records[2]["Id"]
    del fake_salesforce.objects["Account"][deleted]
    fake_salesforce.refuse_records(
        {invalid: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Needs a reason")}
    )
    fake_salesforce.lock_rows_next([locked])

    result = writeback.writeback_push()

    assert fake_salesforce.write_calls("collection") == 3  # 200 + 200 + 49
    assert fake_salesforce.write_calls("sobject") == 0
    assert (result.sent, result.refused, result.retrying) == (447, 2, 1)
    rows = {
        r.account.salesforce_id: r for r in SalesforceWriteback.objects.select_related("account")
    }
    assert rows[deleted].status == "refused" and "no Account" in rows[deleted].error
    assert rows[invalid].status == "refused"
    assert rows[invalid].error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Needs a reason"
    assert rows[locked].status == "pending" and "UNABLE_TO_LOCK_ROW" in rows[locked].error
    run = result.run
    assert (run.status, run.updated_count, run.quarantined_count) == (
        SyncStatus.COMPLETED_WITH_ERRORS,
        447,
        2,
    )
    # The locked row goes on the next sweep; the refused ones are not retried.
    again = writeback.writeback_push()
    assert (again.sent, again.refused) == (1, 0)
    assert fake_salesforce.write_calls("collection") == 4


def test_one_sweep_at_a_time_and_a_skipped_sweep_leaves_a_row(synced):
    _decide(synced["accounts"][0], health="red")
    with transaction.atomic():
        pass
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [writeback.LOCK_KEY])
        result = writeback.writeback_push()
    finally:
        other.close()
    assert result.skipped
    assert result.run.status == SyncStatus.SKIPPED and "held the lock" in result.run.error
    # Released with the other connection (its server process ends a moment after close).
    for _ in range(50):
        with advisory_lock(writeback.LOCK_KEY) as held:
            if held:
                break
        time.sleep(0.1)
    assert held


def test_a_sweep_past_its_budget_leaves_the_rest_to_the_next_task(fake_salesforce, settings):
    settings.SALESFORCE_WRITEBACK_BRAKE_SHARE = 1.0
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 10_000
    for i in range(250):
        _account(fake_salesforce, f"Slow {i:03d}")
    sync_salesforce()
    Account.objects.update(priority=1)
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["priority"], origin="priority_decision")
    first = writeback.writeback_push(budget_seconds=0)
    assert first.more and first.sent == 200
    second = writeback.writeback_push(budget_seconds=0)
    assert not second.more and second.sent == 50


def test_enqueue_runs_on_commit_only(synced, django_capture_on_commit_callbacks):
    ids = [a.pk for a in synced["accounts"]]
    Account.objects.filter(pk__in=ids).update(health="red")
    with django_capture_on_commit_callbacks() as callbacks:
        salesforce_writeback_enqueue(account_ids=ids, fields=["health"], origin="health_assessment")
    assert len(callbacks) == 1
    # The block is the transaction being rolled back: it needs all three statements.
    with (  # noqa: PT012
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        Account.objects.filter(pk__in=ids).update(health="amber")
        salesforce_writeback_enqueue(account_ids=ids, fields=["health"], origin="health_assessment")
        raise RuntimeError("rolled back")
    assert callbacks == []
    assert set(SalesforceWriteback.objects.values_list("value", flat=True)) == {"red"}


def test_switched_off_salesforce_is_a_no_op(settings, django_capture_on_commit_callbacks):
    settings.SALESFORCE_ENABLED = False
    with django_capture_on_commit_callbacks() as callbacks:
        assert (
            salesforce_writeback_enqueue(account_ids=[1], fields=["tam"], origin="admin_edit") == 0
        )
    assert callbacks == []
    assert salesforce_writeback(account_ids=[1]) == SALESFORCE_OFF
    assert salesforce_writeback_sweep() == SALESFORCE_OFF


def test_large_sweeps_go_through_bulk_api_jobs(fake_salesforce, settings):
    settings.SALESFORCE_WRITEBACK_BRAKE_SHARE = 1.0
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 10_000
    settings.SALESFORCE_WRITEBACK_BULK_MIN = 100
    records = [_account(fake_salesforce, f"Job {i:03d}") for i in range(300)]
    sync_salesforce()
    Account.objects.update(health="yellow", priority=1)
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(
        account_ids=ids, fields=["health", "priority"], origin="health_assessment"
    )
    refused = records[5]["Id"]
    fake_salesforce.refuse_records({refused: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "No")})
    fake_salesforce.bulk_delay = 0.3  # the job is InProgress at the first poll

    result = writeback.writeback_push()

    assert (
        fake_salesforce.write_calls("bulk2") == 1 and fake_salesforce.write_calls("collection") == 0
    )
    assert (result.records, result.sent, result.refused) == (299, 598, 2)
    record = fake_salesforce.get("Account", records[0]["Id"])
    assert (record["Health_Score__c"], record["CSM_Priority__c"]) == ("Yellow", 1)
    row = SalesforceWriteback.objects.get(account__salesforce_id=refused, field="health")
    assert row.status == "refused" and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in row.error


@pytest.mark.django_db(transaction=True)
def test_a_large_sweep_records_its_jobs_on_a_session_of_its_own(
    fake_salesforce, settings, monkeypatch
):
    """Outside a transaction (the task, the command) each job's results are committed by
    the recorder's own session while the sweep goes on with the next job: every job's
    results land, in order, with the accounts' last-read values and the run's counts."""
    settings.SALESFORCE_WRITEBACK_BRAKE_SHARE = 1.0
    settings.SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES = 10_000
    settings.SALESFORCE_WRITEBACK_BULK_MIN = 100
    monkeypatch.setattr(writeback, "BULK_JOB_SIZE", 60)  # five jobs of 60 accounts
    records = [_account(fake_salesforce, f"Lane {i:03d}") for i in range(300)]
    sync_salesforce()
    Account.objects.update(health="amber")
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["health"], origin="health_assessment")
    refused = records[100]["Id"]
    fake_salesforce.refuse_records({refused: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "No")})
    assert not connection.in_atomic_block  # so the recorder has a session of its own

    result = writeback.writeback_push()

    assert fake_salesforce.write_calls("bulk2") == 5
    assert (result.records, result.sent, result.refused) == (299, 299, 1)
    assert fake_salesforce.get("Account", records[299]["Id"])["Health_Score__c"] == "Amber"
    # Written rows are gone, the refused one stays; every account now reads "amber" as
    # Salesforce's value except the refused one.
    assert list(SalesforceWriteback.objects.values_list("status", flat=True)) == ["refused"]
    assert Account.objects.filter(salesforce_health="amber").count() == 299
    run = result.run
    run.refresh_from_db()
    assert (run.updated_count, run.quarantined_count) == (299, 1)
    assert run.details["in_flight"] == []
    # Nothing is sent twice by the next sweep.
    assert writeback.writeback_push().sent == 0
    assert fake_salesforce.write_calls("bulk2") == 5


def _sweep_killed_when(env, ready):
    """Starts `manage.py salesforce_writeback`, SIGKILLs it once `ready()`; returns the
    command, for the sweep that follows."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    command = [sys.executable, "manage.py", "salesforce_writeback"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while not ready():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.kill()
    process.wait()
    return command


@pytest.mark.django_db(transaction=True)
def test_a_sweep_killed_mid_way_resends_at_most_one_chunk(fake_salesforce):
    """SIGKILL of `manage.py salesforce_writeback` between chunks: what Salesforce
    acknowledged was committed chunk by chunk, and the next sweep re-reads before it
    writes, so nothing already written is sent again."""
    import subprocess

    from tests.conftest import ROOT, worker_environment

    records = [_account(fake_salesforce, f"Kill {i:03d}") for i in range(1000)]
    sync_salesforce()
    Account.objects.update(priority=1)
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["priority"], origin="priority_decision")
    env = worker_environment(
        {
            **fake_salesforce.worker_env(),
            "SALESFORCE_WRITEBACK_BRAKE_SHARE": "1",
            "SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES": "100000",
        }
    )
    fake_salesforce.delay = 0.15
    command = _sweep_killed_when(env, lambda: fake_salesforce.write_calls("collection") >= 2)
    sent_before = len(fake_salesforce.patches)
    assert 400 <= sent_before < 1000
    # The dead sweep left its run `running`; the next one marks it failed and goes on.
    fake_salesforce.delay = 0
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    assert len(fake_salesforce.patches) <= 1000 + writeback.CHUNK
    assert len({i for _, i, _ in fake_salesforce.patches}) == 1000
    assert all(fake_salesforce.get("Account", r["Id"])["CSM_Priority__c"] == 1 for r in records)
    assert not SalesforceWriteback.objects.exists()
    dead, last = SyncRun.objects.filter(source=Source.SALESFORCE_WRITEBACK).order_by("pk")
    assert dead.status == SyncStatus.FAILED and last.status == SyncStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_sweep_killed_with_a_bulk_job_out_leaves_it_to_the_next_sweep(fake_salesforce):
    """SIGKILL while a Bulk API 2.0 job is being processed: the job was noted on the run,
    so the next sweep records its results and sends none of its records again."""
    import subprocess

    from tests.conftest import ROOT, worker_environment

    records = [_account(fake_salesforce, f"Bulk {i:03d}") for i in range(300)]
    sync_salesforce()
    Account.objects.update(priority=1)
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["priority"], origin="priority_decision")
    env = worker_environment(
        {
            **fake_salesforce.worker_env(),
            "SALESFORCE_WRITEBACK_BRAKE_SHARE": "1",
            "SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES": "100000",
            "SALESFORCE_WRITEBACK_BULK_MIN": "100",
        }
    )
    fake_salesforce.bulk_delay = 3.0  # the job is processed after the sweep is killed
    runs = SyncRun.objects.filter(source=Source.SALESFORCE_WRITEBACK)
    command = _sweep_killed_when(env, runs.filter(details__has_key="in_flight").exists)
    assert fake_salesforce.write_calls("bulk2") == 1 and not fake_salesforce.patches

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    assert fake_salesforce.write_calls("bulk2") == 1  # nothing sent twice
    assert len(fake_salesforce.patches) == 300
    assert all(fake_salesforce.get("Account", r["Id"])["CSM_Priority__c"] == 1 for r in records)
    assert not SalesforceWriteback.objects.exists()
    assert set(Account.objects.values_list("salesforce_priority", flat=True)) == {1}
    dead, last = runs.order_by("pk")
    assert dead.status == SyncStatus.FAILED and dead.details["in_flight"] == []
    assert dead.updated_count == 300 and last.status == SyncStatus.SUCCEEDED


@pytest.mark.worker
def test_a_worker_killed_mid_sweep_is_redelivered_and_sends_at_most_one_chunk_again(
    workers, fake_salesforce
):
    """SIGKILL of the whole worker during a sweep: the broker hands the task to another
    worker after the (here short) visibility timeout, the run the dead one left is marked
    failed, and the redelivered sweep writes the rest without re-sending what was done."""
    import time
    import uuid

    from portfolio.tasks import salesforce_writeback_sweep

    records = [_account(fake_salesforce, f"Redo {i:03d}") for i in range(1000)]
    sync_salesforce()
    Account.objects.update(priority=1)
    ids = list(Account.objects.values_list("pk", flat=True))
    salesforce_writeback_enqueue(account_ids=ids, fields=["priority"], origin="priority_decision")
    env = {
        **fake_salesforce.worker_env(),
        "SALESFORCE_WRITEBACK_BRAKE_SHARE": "1",
        "SALESFORCE_WRITEBACK_BRAKE_MIN_CHANGES": "100000",
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_TASK_TIME_LIMIT": "2",
        "CELERY_LONG_TASK_TIME_LIMIT": "2",
    }
    queue = f"test-{uuid.uuid4().hex[:12]}"
    first = workers(queue, env)
    fake_salesforce.delay = 0.15
    salesforce_writeback_sweep.apply_async(queue=queue)
    deadline = time.monotonic() + 60
    while fake_salesforce.write_calls("collection") < 2:
        assert time.monotonic() < deadline, first.output()
        time.sleep(0.01)
    first.process.kill()
    first.process.wait()
    sent_before = len(fake_salesforce.patches)
    assert 400 <= sent_before < 1000

    fake_salesforce.delay = 0
    second = workers(queue, env)
    deadline = time.monotonic() + 90
    while SalesforceWriteback.objects.exists():
        assert time.monotonic() < deadline, second.output()
        time.sleep(0.2)

    assert len(fake_salesforce.patches) <= 1000 + writeback.CHUNK
    assert len({i for _, i, _ in fake_salesforce.patches}) == 1000
    assert all(fake_salesforce.get("Account", r["Id"])["CSM_Priority__c"] == 1 for r in records)
    runs = list(SyncRun.objects.filter(source=Source.SALESFORCE_WRITEBACK).order_by("pk"))
    assert runs[0].status == SyncStatus.FAILED and runs[-1].status == SyncStatus.SUCCEEDED


def _conflicts(n, fake):
    for i in range(n):
        _account(fake, f"Conflict {i:03d}")
    sync_salesforce()
    accounts = list(Account.objects.filter(name__startswith="Conflict"))
    for account in accounts:
        account.health = "red"
    Account.objects.bulk_update(accounts, ["health"])
    salesforce_writeback_enqueue(
        account_ids=[a.pk for a in accounts], fields=["health"], origin="health_assessment"
    )
    from portfolio.models import SalesforceWriteback as Row

    Row.objects.filter(account__in=accounts).update(status="conflict", salesforce_value="amber")


@pytest.mark.parametrize("size", [3, 60])
def test_the_write_back_page_costs_the_same_whatever_the_size(
    size, fake_salesforce, client, django_assert_max_num_queries
):
    _conflicts(size, fake_salesforce)
    admin = factories.UserFactory(role="Admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    with django_assert_max_num_queries(14):
        page = client.get("/integrations/sync-runs/writeback/")
    assert page.status_code == 200
    assert f"Conflicts ({size})" in page.content.decode()


def test_only_admins_decide_and_tams_do_not_see_the_page(synced, client):
    account = synced["accounts"][0]
    _decide(account, origin=WritebackOrigin.TAM_ASSIGNMENT, tam=None)
    run = writeback.writeback_push().run
    row = SalesforceWriteback.objects.get(account=account)
    client.force_login(synced["tam"])
    assert client.get("/integrations/sync-runs/writeback/").status_code == 403
    manager = factories.UserFactory(role="Manager")
    team = factories.TeamFactory(manager=manager)
    team.tams.add(synced["tam"])
    client.force_login(manager)
    page = client.get("/integrations/sync-runs/writeback/")
    assert page.status_code == 200 and "Admins confirm" in page.content.decode()
    assert (
        client.post(f"/integrations/sync-runs/writeback/runs/{run.pk}/confirm").status_code == 403
    )
    assert client.post(f"/integrations/sync-runs/writeback/runs/{run.pk}/cancel").status_code == 403
    response = client.post(
        f"/integrations/sync-runs/writeback/{row.pk}/resolve", {"keep": "salesforce"}
    )
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == WritebackStatus.HELD


def test_healthz_says_a_mass_change_waits_for_an_admin(synced, client):
    _decide(synced["accounts"][0], origin=WritebackOrigin.TAM_ASSIGNMENT, tam=None)
    run = writeback.writeback_push().run
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert any(f"write-back run {run.pk}" in w for w in body["warnings"])
    assert body["last_sync"]["salesforce_writeback"]["status"] == "needs_confirmation"
    writeback.writeback_cancel(run_id=run.pk, user=None)
    assert not any("write-back" in w for w in client.get("/healthz").json()["warnings"])
