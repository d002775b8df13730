"""Account history (pghistory triggers): bulk upserts and user edits, read in fixed queries."""

from __future__ import annotations

from decimal import Decimal

import pghistory
import pytest

from portfolio.history import account_history
from portfolio.models import Account, AccountEvent
from portfolio.sync.run import sync_salesforce
from tests import factories

pytestmark = pytest.mark.django_db


def test_history_names_the_sync_run_and_the_user(fake_salesforce, django_assert_num_queries):
    tam = factories.UserFactory(role="TAM", first_name="Tess", last_name="Tam")
    editor = factories.UserFactory(role="Manager", first_name="Meg", last_name="Manager")
    record = fake_salesforce.add(
        "Account",
        Name="Acme",
        ARR__c=100000.0,
        Region__c="EMEA",
        Sales_Segment__c="Enterprise",
        Health_Score__c="Yellow",
    )
    first = sync_salesforce().run
    fake_salesforce.update("Account", record["Id"], ARR__c=150000.0)
    second = sync_salesforce().run
    account = Account.objects.get(salesforce_id=record["Id"])
    with pghistory.context(user=editor.pk):
        account.tam = tam
        account.priority = 1
        account.save(update_fields=["tam", "priority"])

    # One query: the events with their context and the names of the users they name.
    with django_assert_num_queries(1):
        entries = account_history(account)

    newest = entries[:2]
    assert {(e.field, e.old, e.new_display, e.who) for e in newest} == {
        ("tam", None, "Tess Tam", "Meg Manager"),
        ("priority", None, "P1", "Meg Manager"),
    }
    arr_change = entries[2]
    assert (arr_change.field, arr_change.old, arr_change.new) == (
        "arr",
        Decimal("100000.00"),
        Decimal("150000.00"),
    )
    assert arr_change.who == f"Salesforce sync run {second.pk}"
    assert arr_change.sync_run_id == second.pk
    created = {e.field: e for e in entries[3:]}
    assert set(created) == {"arr", "health"}  # the values it was created with
    assert created["health"].new_display == "Yellow"
    assert created["arr"].who == f"Salesforce sync run {first.pk}"


def test_history_limit_keeps_old_values_right(db):
    account = factories.AccountFactory(arr=Decimal(1))
    for value in range(2, 8):
        Account.objects.filter(pk=account.pk).update(arr=Decimal(value))  # bulk path

    entries = account_history(account, limit=3)

    assert [(e.old, e.new) for e in entries] == [
        (Decimal(6), Decimal(7)),
        (Decimal(5), Decimal(6)),
        (Decimal(4), Decimal(5)),
    ]
    assert all(e.who == "system" for e in entries)


def test_the_history_trigger_hashes_its_join_and_records_bulk_updates(db):
    """A bulk UPDATE's history is one set-based INSERT whose join of the transition tables
    must not be a nested loop (quadratic: 18 s for 8,000 rows); migration 0009 sets that
    inside the trigger function. If pgtrigger ever re-creates the function, this fails."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proconfig FROM pg_proc WHERE proname = 'pgtrigger_update_update_71cb1'"
        )
        # And no JIT (migration 0017): the disabled nested loop prices every plan of the
        # trigger over jit_above_cost, so each bulk UPDATE compiled it (0.5-0.8 s).
        assert cursor.fetchone()[0] == ["enable_nestloop=off", "jit=off"]
        cursor.execute(
            "SELECT proconfig FROM pg_proc WHERE proname = 'pgtrigger_insert_insert_e20e6'"
        )
        assert cursor.fetchone()[0] == ["jit=off"]
        accounts = factories.AccountFactory.create_batch(300, health="green")
        cursor.execute(
            "UPDATE portfolio_account SET health = 'red', salesforce_health = 'x' "
            "WHERE id = ANY(%s)",
            [[a.pk for a in accounts[:200]]],
        )
        cursor.execute("SHOW enable_nestloop")
        assert cursor.fetchone()[0] == "on"  # only inside the trigger
    changed = AccountEvent.objects.filter(pgh_label="update", health="red")
    assert changed.count() == 200
