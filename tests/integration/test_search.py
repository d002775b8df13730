"""Global search (/search/ and the header box): accounts by name and Salesforce id,
contacts, triage issues, collaboration projects; only within the user's scope; a fixed
number of queries at two sizes; the trigram index is there and used."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from engagement.models import CollaborationProject
from portfolio.models import Account, AccountName
from portfolio.selectors import name_search
from tests.factories import AccountFactory, ContactFactory, UserFactory
from triage.models import TriageIssue
from workspace.search import PER_GROUP, search_for_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def books(tam, manager, team):
    mine = AccountFactory(tam=tam, name="Globex Corporation", salesforce_id="001GLOBEX000000001")
    ContactFactory(account=mine, name="Hank Scorpio")
    TriageIssue.objects.create(
        account=mine, title="Globex Corporation at risk", colour="red", opened_at=timezone.now()
    )
    CollaborationProject.objects.create(account=mine, template="enterprise", path="globex-c0001")
    stranger = UserFactory(role="TAM")  # in no team of the manager's
    theirs = AccountFactory(tam=stranger, name="Globex Holdings", salesforce_id="001HOLD0000000001")
    ContactFactory(account=theirs, name="Hank Hidden")
    TriageIssue.objects.create(
        account=theirs, title="Globex Holdings at risk", colour="red", opened_at=timezone.now()
    )
    CollaborationProject.objects.create(account=theirs, template="enterprise", path="globex-h0001")
    return {"mine": mine, "theirs": theirs, "stranger": stranger}


def test_finds_every_kind_within_the_users_book_only(tam, books):
    results = search_for_user(tam, "globex")
    assert [a.name for a in results.accounts] == ["Globex Corporation"]
    assert [i.title for i in results.issues] == ["Globex Corporation at risk"]
    assert [p.path for p in results.projects] == ["globex-c0001"]
    assert [c.name for c in search_for_user(tam, "hank").contacts] == ["Hank Scorpio"]
    # By Salesforce id, exactly.
    assert [a.name for a in search_for_user(tam, "001GLOBEX000000001").accounts] == [
        "Globex Corporation"
    ]
    # A TAM never finds an account outside their scope, by name or by id.
    assert search_for_user(tam, "Holdings").empty
    assert search_for_user(tam, "001HOLD0000000001").empty
    assert search_for_user(tam, "Hidden").empty


def test_a_manager_finds_the_team_an_admin_everything(manager, admin_user, books):
    assert [a.name for a in search_for_user(manager, "globex").accounts] == ["Globex Corporation"]
    names = [a.name for a in search_for_user(admin_user, "globex").accounts]
    assert names == ["Globex Corporation", "Globex Holdings"]
    assert search_for_user(books["stranger"], "globex corp").empty


def test_prefix_matches_come_first_and_terms_are_escaped(tam):
    AccountFactory(tam=tam, name="The Acme Group")
    AccountFactory(tam=tam, name="Acme Works")
    AccountFactory(tam=tam, name="100% Pure")
    assert [a.name for a in search_for_user(tam, "acme").accounts] == [
        "Acme Works",
        "The Acme Group",
    ]
    assert [a.name for a in search_for_user(tam, "0%").accounts] == ["100% Pure"]
    assert search_for_user(tam, "_%").empty
    assert search_for_user(tam, "a").too_short


def test_the_page_and_the_htmx_partial(client, tam, books):
    client.force_login(tam)
    html = client.get("/search/", {"q": "globex"}).content.decode()
    assert "<h1>Search</h1>" in html and "Globex Corporation" in html
    assert "Globex Holdings" not in html
    partial = client.get("/search/", {"q": "globex"}, **HTMX).content.decode()
    assert "<h1>" not in partial and "/account/001GLOBEX000000001/" in partial
    assert (
        "Type at least 2 characters" in client.get("/search/", {"q": "g"}, **HTMX).content.decode()
    )
    assert client.get("/search/", {"q": "x" * 5000}).status_code == 200


@pytest.mark.parametrize("n", [5, 500])
def test_query_count_does_not_grow_and_results_are_capped(
    client, tam, n, django_assert_max_num_queries
):
    Account.objects.bulk_create(
        Account(
            salesforce_id=f"001S{i:014d}",
            name=f"Initech {i:05d}",
            region_id="US-EAST",
            segment="enterprise",
            tam=tam,
        )
        for i in range(n)
    )
    client.force_login(tam)
    # session, user, groups, then accounts, contacts, issues, projects.
    with django_assert_max_num_queries(7):
        response = client.get("/search/", {"q": "initech"}, **HTMX)
    assert response.status_code == 200
    assert response.content.decode().count('">Initech ') == min(n, PER_GROUP)


def _name_row(account: Account) -> tuple[str, str]:
    """The account's search name and the row version holding it (xmin: a new one for
    every write of the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, xmin::text FROM portfolio_accountname WHERE account_id = %s",
            [account.pk],
        )
        row = cursor.fetchone()
    return tuple(row) if row else None


def test_account_names_follow_inserts_renames_and_deletes(tam, admin_user):
    account = AccountFactory(tam=tam, name="Initrode Systems")
    name, version = _name_row(account)
    assert name == "Initrode Systems"
    # Many accounts in one statement (as the sync inserts them): one name row each.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO portfolio_account (salesforce_id, name, parent_salesforce_id, arr, "
            "segment, plan, digital_only, health, stages_adopted, success_plan, "
            "collaboration_project_url, stage_adoption_hours_per_week, "
            "infrastructure_change_hours_per_week, churn_risk, critical_project, key_logo, "
            "channel_engagement, org_change, weekly_engagement_requested, expansion_play, "
            "tam_handover, created_at, updated_at, region_id, owner_salesforce_id, "
            "salesforce_health, salesforce_tam_id) "
            "SELECT '001BULK' || lpad(i::text, 11, '0'), 'Bulk Vandelay ' || i, '', 0, "
            "'enterprise', '', false, '', 0, '', '', 0, 0, false, false, false, false, "
            "false, false, false, false, now(), now(), %s, '', '', '' "
            "FROM generate_series(1, 3) AS g(i)",
            [account.region_id],
        )
    bulk = AccountName.objects.filter(name__startswith="Bulk Vandelay").count()
    assert bulk == 3
    # An update that leaves the name alone does not write the name's row, even when it
    # sets the name to what it was (the sync's upsert sets every column it reads).
    Account.objects.filter(pk=account.pk).update(priority=1, health="red")
    Account.objects.filter(pk=account.pk).update(name="Initrode Systems", arr=5)
    assert _name_row(account) == (name, version)
    # A rename is followed, and the search finds the new name, not the old.
    Account.objects.filter(pk=account.pk).update(name="Initrode Global")
    assert _name_row(account)[0] == "Initrode Global"
    assert [a.name for a in search_for_user(admin_user, "initrode").accounts] == ["Initrode Global"]
    assert search_for_user(admin_user, "initrode systems").empty
    # Deleted with its account.
    Account.objects.filter(pk=account.pk).delete()
    assert _name_row(account) is None


def test_the_trigram_indexes_exist_and_serve_icontains():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no pg_trgm (the embedded one): no indexes built")
        cursor.execute(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE indexname LIKE %s",
            ["%_trgm"],
        )
        found = {name: (table, definition) for name, table, definition in cursor.fetchall()}
    assert {"account_name_trgm", "contact_name_trgm", "triage_issue_title_trgm"} <= set(found)
    # The account names' index is on their narrow table, not on the accounts' (whose
    # every non-heap-only update would add the name's trigrams to it).
    assert found["account_name_trgm"][0] == "portfolio_accountname"
    assert "gin_trgm_ops" in found["account_name_trgm"][1]
    # The planner can take the index for the name search (UPPER(name) LIKE UPPER(...)),
    # and the accounts' unique index for the id, in one query.
    sql, params = Account.objects.filter(name_search("globex")).only("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        # An empty table: make the planner show which index can answer the LIKE (a
        # btree could only be scanned whole, with a filter).
        for setting in ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "account_name_trgm" in plan
    assert "account_salesforce_id_unique" in plan


def test_django_admin_searches_account_names_in_their_table(admin_client, books):
    """Django admin's account list and a list searched through its account (decisions,
    issues...) both find the name through AccountName, and a Salesforce id exactly."""
    page = admin_client.get("/admin/portfolio/account/", {"q": "holdings"})
    assert page.status_code == 200
    assert "Globex Holdings" in page.content.decode()
    assert "Globex Corporation" not in page.content.decode()
    page = admin_client.get("/admin/portfolio/account/", {"q": "001GLOBEX000000001"})
    assert "Globex Corporation" in page.content.decode()
    assert "Globex Holdings" not in page.content.decode()
    issues = admin_client.get("/admin/triage/triageissue/", {"q": "corporation"})
    assert issues.status_code == 200
    assert "Globex Corporation at risk" in issues.content.decode()
    assert "Globex Holdings at risk" not in issues.content.decode()
