"""The Salesforce pull against the fake over real HTTPS (simple-salesforce, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.models import QuarantinedRecord, SyncCursor, SyncRun, SyncStatus
from portfolio.models import Account, AccountEvent, Opportunity, SalesforceUser
from portfolio.sync.run import sync_salesforce
from tests import factories

pytestmark = pytest.mark.django_db


def seed(fake, *, accounts: int = 5, tam_email: str | None = None) -> dict:
    ae = fake.add("User", Name="Ada Exec", Email="ada@example.com")
    tam = fake.add("User", Name="Tom Tam", Email=tam_email or "tom.tam@example.com")
    parent = fake.add(
        "Account",
        Name="Parent Corp",
        OwnerId=ae["Id"],
        ARR__c=500000.0,
        Region__c="US-EAST",
        Sales_Segment__c="Enterprise",
        Technical_Account_Manager__c=tam["Id"],
        Health_Score__c="Green",
        CSM_Priority__c=1,
        Renewal_Date__c="2027-03-31",
        Customer_Since__c="2021-05-01",
        GitLab_Plan__c="Ultimate",
        Digital_Only__c=False,
        LAM__c=1000,
        Licensed_Seats__c=800,
    )
    children = [
        fake.add(
            "Account",
            Name=f"Child {i}",
            ParentId=parent["Id"],
            OwnerId=ae["Id"],
            ARR__c=10000.0 * (i + 1),
            Region__c="EMEA",
            Sales_Segment__c="Commercial",
            Renewal_Date__c="2027-01-15",
        )
        for i in range(accounts - 1)
    ]
    opp = fake.add(
        "Opportunity",
        AccountId=parent["Id"],
        Name="Upgrade to Ultimate",
        Type="Up-tier",
        StageName="Negotiation",
        CloseDate="2027-01-15",
        Amount=120000.0,
        IsClosed=False,
        IsWon=False,
    )
    return {"ae": ae, "tam": tam, "parent": parent, "children": children, "opp": opp}


def test_first_sync_stores_users_accounts_opportunities_and_links(fake_salesforce):
    tam_user = factories.UserFactory(role="TAM", email="Tom.Tam@example.com")
    data = seed(fake_salesforce)

    outcome = sync_salesforce(trigger="test")

    run = outcome.run
    assert run.status == SyncStatus.SUCCEEDED
    assert (run.created_count, run.updated_count, run.quarantined_count) == (2 + 5 + 1, 0, 0)
    assert run.finished_at is not None
    parent = Account.objects.get(salesforce_id=data["parent"]["Id"])
    assert parent.name == "Parent Corp"
    assert parent.arr == Decimal("500000.00")
    assert parent.region_id == "US-EAST"
    assert parent.segment == "enterprise"
    assert parent.tam == tam_user  # Technical_Account_Manager__c -> SalesforceUser -> email
    assert parent.health == "green" and parent.salesforce_health == "green"
    assert parent.priority == 1
    assert parent.renewal_date == dt.date(2027, 3, 31)
    assert (parent.lam, parent.licensed_seats, parent.plan) == (1000, 800, "Ultimate")
    assert parent.owner.name == "Ada Exec"
    child = Account.objects.get(salesforce_id=data["children"][0]["Id"])
    assert child.parent == parent  # resolved set-based after the run
    assert child.tam is None and child.health == "" and child.priority is None
    opp = Opportunity.objects.get(salesforce_id=data["opp"]["Id"])
    assert opp.account == parent and opp.type == "Up-tier" and opp.amount == Decimal("120000.00")
    assert SalesforceUser.objects.get(salesforce_id=data["tam"]["Id"]).user == tam_user
    cursor = SyncCursor.objects.get(source="salesforce", object_name="Account")
    assert cursor.position == dt.datetime.fromisoformat(data["children"][-1]["SystemModstamp"])


def test_pages_are_followed_and_stored_batch_by_batch(fake_salesforce, settings):
    fake_salesforce.page_size = 3
    settings.SALESFORCE_BATCH_SIZE = 3
    seed(fake_salesforce, accounts=10)

    run = sync_salesforce().run

    assert Account.objects.count() == 10
    assert run.created_count == 2 + 10 + 1
    more = [p for m, p in fake_salesforce.requests if "/query/01g" in p]
    assert len(more) == 3  # 10 accounts in pages of 3 -> 3 nextRecordsUrl follow-ups
    assert run.details["objects"]["Account"]["fetched"] == 10


def test_incremental_sync_fetches_only_changes_since_the_cursor(fake_salesforce):
    data = seed(fake_salesforce)
    sync_salesforce()
    fake_salesforce.update("Account", data["children"][1]["Id"], ARR__c=99999.0)
    new = fake_salesforce.add(
        "Account", Name="Newcomer", ARR__c=1.0, Region__c="APAC", Sales_Segment__c="Commercial"
    )
    fake_salesforce.requests.clear()

    run = sync_salesforce().run

    account_query = next(p for m, p in fake_salesforce.requests if "FROM+Account" in p)
    assert "SystemModstamp+%3E%3D+2026-01-01T00" in account_query
    assert run.created_count == 1 and run.updated_count == 1
    # Only the records at or after the cursor came back, not the whole org.
    assert run.details["objects"]["Account"]["fetched"] <= 3
    assert Account.objects.get(salesforce_id=data["children"][1]["Id"]).arr == Decimal("99999")
    assert Account.objects.filter(salesforce_id=new["Id"]).exists()


def test_unchanged_resync_writes_nothing(fake_salesforce):
    seed(fake_salesforce)
    sync_salesforce()
    updated_at = dict(Account.objects.values_list("salesforce_id", "updated_at"))
    events = AccountEvent.objects.count()

    with CaptureQueriesContext(connection) as queries:
        run = sync_salesforce(full=True).run

    assert (run.created_count, run.updated_count) == (0, 0)
    assert run.unchanged_count == 2 + 5 + 1
    assert run.status == SyncStatus.SUCCEEDED
    assert dict(Account.objects.values_list("salesforce_id", "updated_at")) == updated_at
    assert AccountEvent.objects.count() == events
    # No UPDATE of a portfolio row happened (only run bookkeeping).
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("UPDATE")
        and ("portfolio_account" in q["sql"] or "portfolio_opportunity" in q["sql"])
    ]
    assert all("RETURNING" not in w for w in writes)


BAD_ACCOUNTS = [
    ({"Id": None}, "Missing Id"),
    ({"ARR__c": "lots"}, "ARR__c is 'lots', which is not a number"),
    ({"Renewal_Date__c": "2027-02-30"}, "not a real date"),
    ({"Region__c": "MARS"}, "not a Portfolio region"),
    ({"Sales_Segment__c": "Galactic"}, "not a known segment"),
    ({"Health_Score__c": "Purple"}, "expected Green, Yellow, Amber or Red"),
]


@pytest.mark.parametrize(("override", "reason"), BAD_ACCOUNTS)
def test_each_malformed_kind_is_quarantined_and_the_rest_stored(fake_salesforce, override, reason):
    data = seed(fake_salesforce)
    fields = {
        "Name": "Broken Inc",
        "ARR__c": 1000.0,
        "Region__c": "EMEA",
        "Sales_Segment__c": "Enterprise",
        **override,
    }
    bad = fake_salesforce.add("Account", **fields)

    run = sync_salesforce().run

    assert run.status == SyncStatus.COMPLETED_WITH_ERRORS
    assert run.quarantined_count == 1
    assert Account.objects.count() == 5  # everything else stored
    assert Opportunity.objects.get(salesforce_id=data["opp"]["Id"]).account is not None
    q = QuarantinedRecord.objects.get()
    assert reason in q.reason
    assert q.object_name == "Account" and q.sync_run == run
    assert q.payload["Name"] == "Broken Inc"
    assert q.external_id == (bad["Id"] or "")
    assert not Account.objects.filter(name="Broken Inc").exists()


def test_a_corrected_record_is_stored_and_resolves_its_quarantine(fake_salesforce):
    seed(fake_salesforce)
    bad = fake_salesforce.add(
        "Account", Name="Typo Ltd", ARR__c="12k", Region__c="EMEA", Sales_Segment__c="Commercial"
    )
    first = sync_salesforce().run
    assert first.status == SyncStatus.COMPLETED_WITH_ERRORS

    fake_salesforce.update("Account", bad["Id"], ARR__c=12000.0)
    second = sync_salesforce().run

    assert second.status == SyncStatus.SUCCEEDED
    assert Account.objects.get(salesforce_id=bad["Id"]).arr == Decimal("12000")
    q = QuarantinedRecord.objects.get(external_id=bad["Id"])
    assert q.resolved_at is not None and q.resolved_by_run == second


def test_a_record_rejected_twice_keeps_one_open_quarantine_row(fake_salesforce):
    seed(fake_salesforce)
    bad = fake_salesforce.add(
        "Account", Name="Still Bad", ARR__c=1.0, Region__c="MOON", Sales_Segment__c="Commercial"
    )
    sync_salesforce()
    fake_salesforce.update("Account", bad["Id"], Region__c="MARS")
    run = sync_salesforce().run

    q = QuarantinedRecord.objects.get(external_id=bad["Id"])
    assert "'MARS'" in q.reason and q.sync_run == run and q.resolved_at is None


def test_bulk_upsert_is_recorded_in_history_with_the_sync_run(fake_salesforce):
    data = seed(fake_salesforce)
    first = sync_salesforce().run
    fake_salesforce.update("Account", data["parent"]["Id"], ARR__c=750000.0, Health_Score__c="Red")
    second = sync_salesforce().run

    parent = Account.objects.get(salesforce_id=data["parent"]["Id"])
    events = list(parent.history.order_by("pgh_id"))
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert events[0].pgh_context.metadata["sync_run"] == first.pk
    assert events[1].pgh_context.metadata["sync_run"] == second.pk
    assert (events[1].arr, events[1].health) == (Decimal("750000.00"), "red")


def test_command_prints_a_one_line_summary(fake_salesforce, capsys):
    seed(fake_salesforce)
    call_command("sync_salesforce")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "succeeded" in out[0] and "8 created, 0 updated, 0 unchanged, 0 quarantined" in out[0]
    assert SyncRun.objects.get().trigger == "command"


def test_command_without_configuration_names_the_variables(settings):
    from django.core.management.base import CommandError

    settings.SALESFORCE_ENABLED = False
    with pytest.raises(CommandError, match="SALESFORCE_SESSION_ID"):
        call_command("sync_salesforce")


def test_a_record_the_database_refuses_is_isolated_and_quarantined(fake_salesforce):
    """Defence in depth: a value validation let through but PostgreSQL refuses (simulated
    by a CHECK constraint added for this test) costs that record only, not its batch."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE portfolio_account ADD CONSTRAINT test_refuse_evil CHECK (name <> 'Evil')"
        )
    seed(fake_salesforce, accounts=6)
    evil = fake_salesforce.add(
        "Account", Name="Evil", ARR__c=1.0, Region__c="EMEA", Sales_Segment__c="Enterprise"
    )
    broken = fake_salesforce.add(
        "Account", Name="Nul\x00Byte", ARR__c=1.0, Region__c="EMEA", Sales_Segment__c="Enterprise"
    )

    run = sync_salesforce().run

    assert run.status == SyncStatus.COMPLETED_WITH_ERRORS
    assert Account.objects.count() == 6
    reasons = dict(QuarantinedRecord.objects.values_list("external_id", "reason"))
    assert "The database refused this record" in reasons[evil["Id"]]
    assert "test_refuse_evil" in reasons[evil["Id"]]
    assert "cannot be stored" in reasons[broken["Id"]]
