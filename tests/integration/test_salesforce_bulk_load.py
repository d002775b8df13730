"""A first load into an empty table sets its secondary indexes and foreign keys aside and
rebuilds them (integrations/bulkload.py), against the fake over real HTTPS."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from integrations import bulkload
from integrations.models import Source, SyncCursor, SyncRun, SyncStatus
from portfolio.models import Account, AccountEvent, AccountName, Opportunity
from portfolio.sync.objects import OBJECTS, _create_stage, _upsert
from portfolio.sync.records import SyncContext
from portfolio.sync.run import LOCK_KEY, sync_salesforce
from tests.dbschema import schema_of

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ("portfolio_account", "portfolio_accountname", "portfolio_opportunity")


def schema() -> dict[str, tuple[list, list]]:
    return schema_of(*TABLES)


@pytest.fixture
def small_pages(fake_salesforce, settings):
    """Bulk loads from 5 records on, in pages and batches of 4."""
    settings.SALESFORCE_BULK_LOAD_MIN = 5
    fake_salesforce.page_size = 4
    settings.SALESFORCE_BATCH_SIZE = 4
    return fake_salesforce


def seed(fake, accounts: int = 12) -> None:
    owner = fake.add("User", Name="Ada Exec", Email="ada@example.com")
    tam = fake.add("User", Name="Tom Tam", Email="tom@example.com")
    parent = fake.add(
        "Account",
        Name="Parent Corp",
        OwnerId=owner["Id"],
        Technical_Account_Manager__c=tam["Id"],
        ARR__c=900000.0,
        Region__c="EMEA",
        Sales_Segment__c="Enterprise",
    )
    for i in range(accounts - 1):
        child = fake.add(
            "Account",
            Name=f"Child {i:02d}",
            ParentId=parent["Id"],
            OwnerId=owner["Id"],
            ARR__c=1000.0 * (i + 1),
            Region__c="EMEA",
            Sales_Segment__c="Commercial",
        )
        fake.add("Opportunity", AccountId=child["Id"], Name=f"Renewal {i:02d}", Amount=10.0)


def test_a_large_first_load_sets_indexes_aside_and_rebuilds_them_exactly(small_pages):
    seed(small_pages)
    before = schema()

    run = sync_salesforce().run

    assert run.status == SyncStatus.SUCCEEDED
    assert schema() == before  # every index and foreign key is back, validated
    bulk = run.details["objects"]["Account"]["bulk_load"]
    assert "portfolio_a_tam_id_4bba91_idx" in bulk["set_aside"]
    assert "portfolio_account_region_id_9c567eb8_fk_portfolio_region_code" in bulk["set_aside"]
    assert "account_salesforce_id_unique" not in bulk["set_aside"]  # ON CONFLICT needs it
    # The names' table, which the accounts' insert trigger fills, loads the same way.
    names_table = {"portfolio_accountnam_account_id_dc55dd82_fk_portfolio"}
    if any("account_name_trgm" in index for index in before["portfolio_accountname"][0]):
        names_table.add("account_name_trgm")  # where pg_trgm is there to build it
    assert names_table <= set(bulk["set_aside"])
    assert sorted(bulk["rebuilt"]) == sorted(bulk["set_aside"]) and bulk["problems"] == []
    assert "bulk_load" in run.details["objects"]["Opportunity"]
    assert "bulk_load" not in run.details["objects"]["User"]  # 2 users: below the minimum
    assert "rebuild" in run.details["timings_s"]
    assert not SyncCursor.objects.exclude(deferred_ddl=[]).exists()
    # The load itself is the same as without: links, counts and history.
    assert Account.objects.count() == 12 and run.created_count == 2 + 12 + 11
    parent = Account.objects.get(name="Parent Corp")
    assert parent.owner.name == "Ada Exec" and parent.children.count() == 11
    assert not Opportunity.objects.filter(account__isnull=True).exists()
    assert AccountEvent.objects.filter(pgh_label="insert").count() == 12
    assert AccountName.objects.count() == 12  # by the accounts' insert trigger


def test_small_loads_and_tables_with_rows_keep_their_indexes(fake_salesforce, settings):
    seed(fake_salesforce)
    run = sync_salesforce().run  # 12 accounts: below the default minimum of 5,000
    assert all("bulk_load" not in counts for counts in run.details["objects"].values())

    settings.SALESFORCE_BULK_LOAD_MIN = 1
    for i in range(3):
        fake_salesforce.add(
            "Account", Name=f"Late {i}", Region__c="EMEA", Sales_Segment__c="Commercial"
        )
    run = sync_salesforce(full=True).run  # a full re-sync into tables that have rows
    assert run.created_count == 3
    assert all("bulk_load" not in counts for counts in run.details["objects"].values())


class Interrupted(Exception):
    pass


def test_a_load_that_stops_halfway_still_rebuilds_what_it_set_aside(small_pages):
    seed(small_pages)
    before = schema()
    seen: list[int] = []

    def progress(name: str, done: int, total: int) -> None:
        if name == "Account":
            seen.append(len(schema()["portfolio_account"][0]))
            if done >= 8:
                raise Interrupted  # e.g. Ctrl-C in the command's progress bar

    with pytest.raises(Interrupted):
        sync_salesforce(progress=progress)

    assert seen[0] < len(before["portfolio_account"][0])  # the indexes were set aside
    assert schema() == before
    assert Account.objects.count() == 8  # the committed batches stay
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.FAILED and "Interrupted" in run.error
    assert not SyncCursor.objects.exclude(deferred_ddl=[]).exists()


def test_a_foreign_key_broken_meanwhile_comes_back_not_valid_and_is_reported():
    cursor = SyncCursor.objects.create(source=Source.SALESFORCE, object_name="Account")
    before = schema()

    names = bulkload.set_aside(cursor, "portfolio_account")
    assert SyncCursor.objects.get(pk=cursor.pk).deferred_ddl  # committed with the drops
    # Nothing checks the region while its foreign key is aside.
    Account.objects.create(
        salesforce_id="001X", name="Orphan", region_id="NOWHERE", segment="Commercial"
    )

    done = bulkload.restore(cursor)

    region_fk = "portfolio_account_region_id_9c567eb8_fk_portfolio_region_code"
    assert sorted(done["rebuilt"]) == sorted(names)
    assert len(done["problems"]) == 1 and done["problems"][0].startswith(region_fk)
    after = schema()["portfolio_account"]
    assert after[0] == before["portfolio_account"][0]  # every index is back
    constraints = {name: valid for name, _, valid in after[1]}
    assert constraints[region_fk] is False  # back, but NOT VALID for the old rows...
    assert sum(1 for valid in constraints.values() if not valid) == 1
    with pytest.raises(IntegrityError), transaction.atomic():  # ...and enforced for new ones
        Account.objects.filter(salesforce_id="001X").update(region_id="ELSEWHERE")
    assert bulkload.restore(SyncCursor.objects.get(pk=cursor.pk)) == {}  # nothing left


def test_a_bulk_batch_meeting_a_record_already_stored_falls_back_to_the_upsert():
    """The plain INSERT of a bulk load cannot meet a stored record, unless Salesforce sends
    one twice: then that batch alone is upserted instead."""
    ctx = SyncContext(regions={"EMEA": "EMEA"})
    spec = next(spec for spec in OBJECTS if spec.name == "Account")

    def row(salesforce_id: str, arr: float) -> tuple:
        record = {
            "Id": salesforce_id,
            "Name": f"Account {salesforce_id}",
            "ARR__c": Decimal(arr),
            "Region__c": "EMEA",
            "Sales_Segment__c": "Commercial",
            "SystemModstamp": "2026-11-23T10:00:00.000+0000",
        }
        return spec.parse(record, ctx)

    _create_stage(spec)
    assert _upsert(spec, [row("001A", 1), row("001B", 2)], expect_new=True) == (2, 0)
    assert _upsert(spec, [row("001B", 3), row("001C", 4)], expect_new=True) == (1, 1)
    assert dict(Account.objects.values_list("salesforce_id", "arr")) == {
        "001A": Decimal(1),
        "001B": Decimal(3),
        "001C": Decimal(4),
    }


def test_migrate_first_rebuilds_what_a_killed_load_left_aside_unless_a_sync_runs():
    cursor = SyncCursor.objects.create(source=Source.SALESFORCE, object_name="Account")
    before = schema()
    bulkload.set_aside(cursor, "portfolio_account")  # as a worker killed mid-load leaves it

    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])  # a sync is loading
        call_command("migrate", verbosity=0)
        assert schema() != before

    call_command("migrate", verbosity=0)

    assert schema() == before
    assert SyncCursor.objects.get(pk=cursor.pk).deferred_ddl == []
