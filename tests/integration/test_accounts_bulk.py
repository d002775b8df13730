"""Bulk actions on the accounts table (issue 15.5): reassign TAM (written back to
Salesforce), a rule-set parameter's what-if for the selection, CSV export; ticked rows or
"all matching the filter", bounded, confirmed when mass, checked account by account."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from portfolio import writeback
from portfolio.models import Account, Activity, SalesforceWriteback
from portfolio.sync.run import sync_salesforce
from tests import factories
from ui import bulk

pytestmark = pytest.mark.django_db
URL = "/accounts/bulk/"
TAM = "Technical_Account_Manager__c"


@pytest.fixture
def other_tam(team):
    other = factories.UserFactory(role="TAM", first_name="Otto", last_name="Other")
    team.tams.add(other)
    return other


def _post(client, ids, **data):
    return client.post(URL, {"account": [str(i) for i in ids], **data})


def test_the_bar_shows_for_managers_not_tams(client, manager, tam, team):
    factories.AccountFactory(tam=tam, name="Acme")
    client.force_login(manager)
    page = client.get("/").content.decode()
    assert 'id="bulk-form"' in page and 'form="bulk-form"' in page
    assert "Select all 1 account matching the filter" in page
    client.force_login(tam)
    page = client.get("/").content.decode()
    assert 'id="bulk-form"' not in page
    assert _post(client, [1], action="export").status_code == 403


def test_reassign_ticked_accounts_records_history_timeline_and_writeback(
    client, manager, tam, other_tam
):
    accounts = [factories.AccountFactory(tam=tam, name=f"Acme {i}") for i in range(3)]
    client.force_login(manager)
    response = _post(
        client,
        [a.pk for a in accounts[:2]],
        action="reassign_tam",
        new_tam=other_tam.pk,
        next="/?sort=-arr",
    )
    assert response.status_code == 302 and response["Location"] == "/?sort=-arr"
    assert list(Account.objects.filter(tam=other_tam).order_by("name")) == accounts[:2]
    assert Account.objects.get(pk=accounts[2].pk).tam == tam
    notes = Activity.objects.filter(subject__startswith="TAM reassigned: Otto Other")
    assert notes.count() == 2 and {n.user for n in notes} == {manager}
    # The account history names who did it (the request's user, through the middleware).
    page = client.get(f"/account/{accounts[0].salesforce_id}/").content.decode()
    assert "Otto Other" in page


def test_reassign_writes_the_tam_back_to_salesforce(client, fake_salesforce):
    sf_a = fake_salesforce.add("User", Name="Tess", Email="tess@example.com")
    sf_b = fake_salesforce.add("User", Name="Otto", Email="otto@example.com")
    records = [
        fake_salesforce.add(
            "Account",
            Name=f"Acme {i}",
            ARR__c=100000.0,
            Region__c="US-WEST",
            Sales_Segment__c="Enterprise",
            **{TAM: sf_a["Id"]},
        )
        for i in range(2)
    ]
    tess = factories.UserFactory(role="TAM", email="tess@example.com")
    otto = factories.UserFactory(role="TAM", email="otto@example.com")
    manager = factories.UserFactory(role="Manager")
    team = factories.TeamFactory(manager=manager)
    team.tams.add(tess, otto)
    sync_salesforce()
    account = Account.objects.get(salesforce_id=records[0]["Id"])
    assert account.tam == tess
    client.force_login(manager)
    assert _post(client, [account.pk], action="reassign_tam", new_tam=otto.pk).status_code == 302
    row = SalesforceWriteback.objects.get(account=account, field="tam")
    assert row.origin == "tam_assignment" and row.changed_by == manager
    writeback.writeback_push()
    assert fake_salesforce.get("Account", records[0]["Id"])[TAM] == sf_b["Id"]
    assert fake_salesforce.get("Account", records[1]["Id"])[TAM] == sf_a["Id"]


def test_a_mass_change_is_confirmed_first(client, manager, tam, other_tam):
    accounts = [factories.AccountFactory(tam=tam) for _ in range(bulk.CONFIRM_OVER + 1)]
    client.force_login(manager)
    ids = [a.pk for a in accounts]
    response = _post(client, ids, action="reassign_tam", new_tam=other_tam.pk)
    page = response.content.decode()
    assert response.status_code == 200 and 'id="bulk-confirm"' in page
    assert f"Reassign {len(ids)} accounts" in page
    assert not Account.objects.filter(tam=other_tam).exists()
    response = _post(client, ids, action="reassign_tam", new_tam=other_tam.pk, confirm="1")
    assert response.status_code == 302
    assert Account.objects.filter(tam=other_tam).count() == len(ids)


def test_all_matching_the_filter_is_bounded_and_scoped(client, manager, tam, other_tam):
    mine = [factories.AccountFactory(tam=tam, name=f"Acme {i}", priority=1) for i in range(3)]
    factories.AccountFactory(tam=tam, name="Acme P2", priority=2)
    outsider = factories.AccountFactory(tam=factories.UserFactory(role="TAM"), priority=1)
    client.force_login(manager)
    data = {"all_matching": "1", "filter": "priority=1", "action": "reassign_tam"}
    response = client.post(URL, {**data, "new_tam": other_tam.pk})
    assert 'id="bulk-confirm"' in response.content.decode()  # all matching: always confirmed
    confirm = {**data, "new_tam": other_tam.pk, "confirm": "1"}
    # The confirmation page posts back the ids it listed.
    response = client.post(URL, {**confirm, "all_matching": "", "account": [a.pk for a in mine]})
    assert response.status_code == 302
    assert set(Account.objects.filter(tam=other_tam)) == set(mine)
    assert Account.objects.get(pk=outsider.pk).tam != other_tam


def test_all_matching_over_the_bound_is_refused(client, manager, tam, team, monkeypatch):
    monkeypatch.setattr(bulk, "BULK_MAX", 2)
    for _ in range(3):
        factories.AccountFactory(tam=tam)
    client.force_login(manager)
    response = client.post(URL, {"all_matching": "1", "filter": "", "action": "export"})
    assert response.status_code == 400
    assert "More than 2 accounts match this filter" in response.content.decode()


def test_an_account_outside_the_users_books_refuses_the_whole_selection(
    client, manager, tam, other_tam
):
    mine = factories.AccountFactory(tam=tam)
    theirs = factories.AccountFactory(tam=factories.UserFactory(role="TAM"))
    client.force_login(manager)
    response = _post(client, [mine.pk, theirs.pk], action="reassign_tam", new_tam=other_tam.pk)
    assert response.status_code == 403
    assert "1 of the 2 selected accounts are not in a book you manage" in response.content.decode()
    assert Account.objects.get(pk=mine.pk).tam == tam


def test_a_tam_outside_the_managers_teams_cannot_be_assigned(client, manager, tam, team):
    account = factories.AccountFactory(tam=tam)
    stranger = factories.UserFactory(role="TAM")
    client.force_login(manager)
    response = _post(client, [account.pk], action="reassign_tam", new_tam=stranger.pk)
    page = response.content.decode()
    assert response.status_code == 400 and "Not a TAM of a team you manage." in page
    assert f'name="account" value="{account.pk}"' in page  # the selection is kept
    assert _post(client, [], action="export").status_code == 400


def test_export_the_selection_with_csv_injection_protection(client, manager, tam, team):
    a = factories.AccountFactory(tam=tam, name="=HYPERLINK(1)", arr=Decimal(5))
    factories.AccountFactory(tam=tam, name="Not selected")
    client.force_login(manager)
    response = _post(client, [a.pk], action="export")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 and rows[1][1] == "'=HYPERLINK(1)"


def test_whatif_for_the_selection_only_stores_nothing(client, manager, tam, team):
    from prioritization.models import RuleSet

    ruleset = RuleSet.objects.get(region_id="US-WEST", segment="enterprise")
    stored = ruleset.stage_adoption_hours
    a = factories.AccountFactory(
        tam=tam, region_id="US-WEST", segment="enterprise", priority=2, name="Picked"
    )
    factories.AccountFactory(tam=tam, region_id="US-WEST", segment="enterprise")
    client.force_login(manager)
    response = _post(client, [a.pk], action="whatif", parameter="stage_adoption_hours", value="1.5")
    page = response.content.decode()
    assert response.status_code == 200 and 'id="bulk-whatif"' in page
    assert "Of 1 selected account:" in page
    ruleset.refresh_from_db()
    assert ruleset.stage_adoption_hours == stored
    bad = _post(client, [a.pk], action="whatif", parameter="stage_adoption_hours", value="x")
    assert bad.status_code == 400 and 'id="id_bulk_value-errors"' in bad.content.decode()
    bad = _post(client, [a.pk], action="whatif", parameter="model", value="1")
    assert bad.status_code == 400 and "Choose a rule-set parameter." in bad.content.decode()


def test_dashboard_with_the_bulk_bar_has_a_fixed_query_count(
    client, manager, tam, team, django_assert_max_num_queries
):
    for n in (2, 30):
        for _ in range(n):
            factories.AccountFactory(tam=tam)
        client.force_login(manager)
        with django_assert_max_num_queries(20):
            client.get("/")
        with django_assert_max_num_queries(8):
            client.get("/?sort=-arr", HTTP_HX_REQUEST="true")
