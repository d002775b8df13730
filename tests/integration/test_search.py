"""Global search (/search/ and the header box): accounts by name and Salesforce id,
contacts, triage issues, collaboration projects; only within the user's scope; a fixed
number of queries at two sizes; the trigram index is there and used."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from engagement.models import CollaborationProject
from portfolio.models import Account
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


def test_the_trigram_indexes_exist_and_serve_icontains():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no pg_trgm (the embedded one): no indexes built")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE %s", ["%_trgm"]
        )
        found = dict(cursor.fetchall())
    assert {"account_name_trgm", "contact_name_trgm", "triage_issue_title_trgm"} <= set(found)
    assert "gin_trgm_ops" in found["account_name_trgm"]
    # The planner can take the index for Django's icontains (UPPER(name) LIKE UPPER(...)).
    sql, params = (
        Account.objects.filter(name__icontains="globex").only("pk").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        # An empty table: make the planner show which index can answer the LIKE (a
        # btree such as account (name, id) could only be scanned whole, with a filter).
        for setting in ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "account_name_trgm" in plan
