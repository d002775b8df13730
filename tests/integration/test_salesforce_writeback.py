"""Write-back of TAM, health and priority to Salesforce: idempotent, merged with pulls."""

from __future__ import annotations

import pytest
from django.db import transaction

from portfolio.models import Account
from portfolio.services import (
    salesforce_writeback_enqueue,
    salesforce_writeback_pending,
    salesforce_writeback_push,
)
from portfolio.sync import sync_salesforce
from portfolio.tasks import SALESFORCE_OFF, salesforce_writeback, salesforce_writeback_sweep
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(fake_salesforce):
    """Two accounts pulled from the fake, one TAM matched by email."""
    tam = factories.UserFactory(role="TAM", email="tess@example.com")
    other = factories.UserFactory(role="TAM", email="otto@example.com")
    sf_tam = fake_salesforce.add("User", Name="Tess", Email="tess@example.com")
    sf_other = fake_salesforce.add("User", Name="Otto", Email="otto@example.com")
    records = [
        fake_salesforce.add(
            "Account",
            Name=f"Acme {i}",
            ARR__c=200000.0,
            Region__c="US-WEST",
            Sales_Segment__c="Enterprise",
            Technical_Account_Manager__c=sf_tam["Id"],
            Health_Score__c="Green",
            CSM_Priority__c=2,
        )
        for i in range(2)
    ]
    sync_salesforce()
    return {
        "tam": tam,
        "other": other,
        "sf_tam": sf_tam,
        "sf_other": sf_other,
        "records": records,
        "accounts": [Account.objects.get(salesforce_id=r["Id"]) for r in records],
    }


def test_nothing_is_pending_right_after_a_pull(synced, fake_salesforce):
    fake_salesforce.add(
        "Account", Name="Blank", ARR__c=1.0, Region__c="EMEA", Sales_Segment__c="Commercial"
    )  # no TAM, no health, no priority on either side
    sync_salesforce()
    assert Account.objects.count() == 3
    assert not salesforce_writeback_pending().exists()
    result = salesforce_writeback_push(account_ids=[a.pk for a in synced["accounts"]])
    assert (result.pushed, result.in_sync) == (0, 2)


def test_changed_fields_are_pushed_once(synced, fake_salesforce):
    account = synced["accounts"][0]
    account.health = "red"
    account.priority = 1
    account.tam = synced["other"]
    account.save(update_fields=["health", "priority", "tam"])

    result = salesforce_writeback_push(account_ids=[account.pk])

    assert result.pushed == 1
    assert fake_salesforce.patches == [
        (
            "Account",
            account.salesforce_id,
            {
                "Technical_Account_Manager__c": synced["sf_other"]["Id"],
                "Health_Score__c": "Red",
                "CSM_Priority__c": 1,
            },
        )
    ]
    record = fake_salesforce.get("Account", account.salesforce_id)
    assert (record["Health_Score__c"], record["CSM_Priority__c"]) == ("Red", 1)
    # A retried task sends nothing twice.
    again = salesforce_writeback_push(account_ids=[account.pk])
    assert (again.pushed, again.in_sync) == (0, 1)
    assert len(fake_salesforce.patches) == 1
    # The next pull sees our own write as unchanged.
    run = sync_salesforce().run
    assert run.updated_count == 0
    account.refresh_from_db()
    assert (account.health, account.priority, account.tam) == ("red", 1, synced["other"])


def test_only_the_changed_field_is_sent(synced, fake_salesforce):
    account = synced["accounts"][1]
    account.health = "amber"
    account.save(update_fields=["health"])
    salesforce_writeback_push(account_ids=[account.pk])
    assert fake_salesforce.patches[-1][2] == {"Health_Score__c": "Amber"}


def test_removing_the_tam_clears_it_in_salesforce(synced, fake_salesforce):
    account = synced["accounts"][0]
    account.tam = None
    account.save(update_fields=["tam"])
    salesforce_writeback_push(account_ids=[account.pk])
    assert (
        fake_salesforce.get("Account", account.salesforce_id)["Technical_Account_Manager__c"]
        is None
    )


def test_a_pending_local_change_survives_a_pull_and_salesforce_changes_are_taken(
    synced, fake_salesforce
):
    mine, theirs = synced["accounts"]
    mine.health = "red"
    mine.save(update_fields=["health"])  # not pushed yet
    fake_salesforce.update("Account", mine.salesforce_id, Health_Score__c="Yellow", ARR__c=1.0)
    fake_salesforce.update("Account", theirs.salesforce_id, Health_Score__c="Amber")

    sync_salesforce()

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.health, mine.salesforce_health, mine.arr) == ("red", "yellow", 1)
    assert theirs.health == "amber"  # no local change: Salesforce's new value is taken
    salesforce_writeback_push(account_ids=[mine.pk, theirs.pk])
    assert fake_salesforce.patches == [("Account", mine.salesforce_id, {"Health_Score__c": "Red"})]


def test_transient_failures_are_retried_and_refusals_reported(synced, fake_salesforce):
    for account in synced["accounts"]:
        account.priority = 4
        account.save(update_fields=["priority"])
    del fake_salesforce.objects["Account"][synced["accounts"][0].salesforce_id]  # deleted in SF
    fake_salesforce.fail_next(503, 1)

    result = salesforce_writeback_push(account_ids=[a.pk for a in synced["accounts"]])

    assert result.failed == [synced["accounts"][0].salesforce_id]
    assert result.pushed == 1
    assert (
        fake_salesforce.get("Account", synced["accounts"][1].salesforce_id)["CSM_Priority__c"] == 4
    )


def test_sweep_pushes_every_pending_account(synced, fake_salesforce):
    Account.objects.update(priority=1)  # a bulk change, no enqueue
    assert salesforce_writeback_pending().count() == 2
    assert salesforce_writeback_sweep() == "2 account(s) pushed to Salesforce, 0 already in sync"
    assert not salesforce_writeback_pending().exists()


def test_enqueue_runs_on_commit_only(synced, django_capture_on_commit_callbacks):
    ids = [a.pk for a in synced["accounts"]]
    with django_capture_on_commit_callbacks() as callbacks:
        salesforce_writeback_enqueue(account_ids=ids)
    assert len(callbacks) == 1
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        salesforce_writeback_enqueue(account_ids=ids)
        raise RuntimeError("rolled back")
    assert callbacks == []


def test_switched_off_salesforce_is_a_no_op(settings, django_capture_on_commit_callbacks):
    settings.SALESFORCE_ENABLED = False
    with django_capture_on_commit_callbacks() as callbacks:
        salesforce_writeback_enqueue(account_ids=[1])
    assert callbacks == []
    assert salesforce_writeback(account_ids=[1]) == SALESFORCE_OFF
    assert salesforce_writeback_sweep() == SALESFORCE_OFF
