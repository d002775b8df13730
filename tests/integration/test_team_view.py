"""The manager's team view: per-TAM workload, drill-down links, 403 for TAMs, and a
fixed query count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import AccountFactory, ActivityFactory, UserFactory
from tests.integration.test_dashboard import bulk_accounts

pytestmark = pytest.mark.django_db


def test_tams_get_403(client, tam):
    client.force_login(tam)
    assert client.get(reverse("ui:team")).status_code == 403


def test_workload_per_tam(client, manager, tam, team):
    second = UserFactory(role="TAM", first_name="Bea", last_name="Second")
    team.tams.add(second)
    outsider = UserFactory(role="TAM")
    AccountFactory(tam=tam, priority=1, health="red", arr=Decimal(2_000_000))
    fresh = AccountFactory(tam=tam, priority=1, health="green", arr=Decimal(700_000))
    ActivityFactory(
        account=fresh, kind="cadence_call", occurred_at=timezone.now() - dt.timedelta(days=2)
    )
    AccountFactory(tam=tam, priority=2, health="amber", arr=Decimal(900_000))
    AccountFactory(tam=outsider, priority=1, arr=Decimal(9_000_000))
    client.force_login(manager)
    response = client.get(reverse("ui:team"))
    assert response.status_code == 200
    rows = {row["tam"].pk: row for row in response.context["rows"]}
    assert set(rows) == {tam.pk, second.pk}
    mine = rows[tam.pk]
    assert (mine["count"], mine["book_arr"], mine["p1"], mine["at_risk"], mine["overdue"]) == (
        3,
        Decimal(3_600_000),
        2,
        2,
        2,
    )
    assert mine["arr_pct"] == 100 and mine["p1_pct"] == 67
    assert rows[second.pk]["count"] == 0
    html = response.content.decode()
    assert reverse("ui:tam_dashboard", args=[tam.pk]) in html
    assert "Priority requests waiting for you" in html


def test_admin_sees_every_tam(client, admin_user, tam):
    client.force_login(admin_user)
    response = client.get(reverse("ui:team"))
    assert tam in [row["tam"] for row in response.context["rows"]]


def test_a_company_of_tams_is_shown_a_page_at_a_time_with_totals_over_all(client, admin_user, tam):
    from django.contrib.auth.models import Group, User

    from ui.views import TEAM_PAGE_SIZE

    more = User.objects.bulk_create(
        User(username=f"tam-{i:03d}", last_name=f"Zz{i:03d}") for i in range(TEAM_PAGE_SIZE + 9)
    )
    Group.objects.get(name="TAM").user_set.add(*more)
    AccountFactory(tam=more[-1], arr=Decimal(1_000))  # on the last page, in the totals
    client.force_login(admin_user)

    first = client.get(reverse("ui:team"))
    assert len(first.context["rows"]) == TEAM_PAGE_SIZE
    assert first.context["tam_count"] == TEAM_PAGE_SIZE + 10  # with the `tam` fixture
    assert first.context["totals"]["count"] == 1
    html = first.content.decode()
    assert f"TAMs 1\N{EN DASH}{TEAM_PAGE_SIZE} of {TEAM_PAGE_SIZE + 10}" in html
    assert "?page=2" in html

    last = client.get(reverse("ui:team"), {"page": 2})
    assert [row["tam"] for row in last.context["rows"]][-1] == more[-1]
    assert len(last.context["rows"]) == 10 and 'rel="prev"' in last.content.decode()
    # Past the end or not a number: the nearest page, not an error.
    assert client.get(reverse("ui:team"), {"page": 99}).context["page"] == 2
    assert client.get(reverse("ui:team"), {"page": "x"}).context["page"] == 1


@pytest.mark.parametrize("n", [10, 1000])
def test_team_view_query_count_does_not_grow(
    client, manager, tam, team, n, django_assert_max_num_queries
):
    for _ in range(3):
        other = UserFactory(role="TAM")
        team.tams.add(other)
        bulk_accounts(other, n // 4, prefix=f"T{other.pk}")
    bulk_accounts(tam, n // 4)
    client.force_login(manager)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("ui:team"))
    assert response.status_code == 200
    assert sum(row["count"] for row in response.context["rows"]) == 4 * (n // 4)


def test_overdue_counts_match_the_dashboard_when_a_rule_set_says_0_days(manager, tam, team):
    """0 days in a rule set means "no number": the handbook's 30 days, on both pages."""
    from engagement.cadence import with_cadence
    from portfolio.models import Account
    from prioritization.models import RuleSet
    from ui.selectors import team_workload

    account = AccountFactory(tam=tam, priority=1)
    ActivityFactory(
        account=account, kind="cadence_call", occurred_at=timezone.now() - dt.timedelta(days=3)
    )
    RuleSet.objects.filter(region_id=account.region_id, segment=account.segment).update(
        p1_cadence_days=0
    )

    row = next(r for r in team_workload(manager) if r["tam"].pk == tam.pk)
    assert row["overdue"] == 0
    assert not with_cadence(Account.objects.filter(pk=account.pk)).get().cadence_overdue
