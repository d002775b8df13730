"""Every list a person sees is bounded (issue 12, points 1 and 4): the agenda's sections and
the board's columns show at most a section's rows with a capped count and "show all" pages;
the pages' query counts and sizes are the same at two sizes of the data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Account, Region
from portfolio.paging import COUNT_CAP, PAGE_ROWS, SECTION_ROWS
from triage.models import TriageIssue

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
# An agenda or a board of any size stays under this (the aim is < 500 KB at 1M accounts).
MAX_BYTES = 300_000


def book(tam, n: int, *, prefix: str = "B") -> list[Account]:
    """n accounts of `tam` in one INSERT, every one amber or red, every third one with an
    open issue of another colour (so it is "mismatched"), the rest without one."""
    today = timezone.localdate()
    regions = list(Region.objects.values_list("code", flat=True))
    accounts = Account.objects.bulk_create(
        Account(
            salesforce_id=f"001{prefix}{tam.pk:04d}{i:010d}",
            name=f"{prefix} account {i:05d}",
            arr=Decimal(10_000 + 37 * i),
            region_id=regions[i % len(regions)],
            segment="enterprise",
            tam=tam,
            renewal_date=today + dt.timedelta(days=30),
            health=["amber", "red"][i % 2],
        )
        for i in range(n)
    )
    now = timezone.now()
    TriageIssue.objects.bulk_create(
        TriageIssue(
            account=a,
            title=a.name,
            colour="yellow",
            region=a.region_id,
            opened_at=now - dt.timedelta(days=i % 30),
        )
        for i, a in enumerate(accounts)
        if i % 3 == 0
    )
    # Accounts without a TAM renewing within 90 days (the agenda's renewals check).
    Account.objects.bulk_create(
        Account(
            salesforce_id=f"001U{prefix}{i:013d}",
            name=f"{prefix} unassigned {i:05d}",
            arr=Decimal(5_000 + i),
            region_id=regions[0],
            segment="enterprise",
            renewal_date=today + dt.timedelta(days=10 + i % 60),
        )
        for i in range(n // 2)
    )
    return accounts


def get(client, url, **extra):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return response, len(queries.captured_queries)


@pytest.mark.parametrize("user_fixture", ["admin_user", "manager"])
def test_agenda_is_bounded_and_costs_the_same_at_two_sizes(
    request, client, tam, team, user_fixture
):
    user = request.getfixturevalue(user_fixture)
    team.region_id = Region.objects.order_by("code").values_list("code", flat=True)[0]
    team.save()  # a manager reviews the unassigned renewals of their team's region
    client.force_login(user)
    url = reverse("triage:agenda")
    book(tam, 30, prefix="S")
    small, small_queries = get(client, url)
    book(tam, 1_500, prefix="L")
    large, large_queries = get(client, url)
    assert large_queries == small_queries <= 12
    assert len(large.content) < MAX_BYTES
    context = large.context
    for key in ("missing_issues", "mismatched_issues", "new_issues", "unassigned_renewals"):
        section = context[key]
        assert len(section) == SECTION_ROWS, key
        assert section.more
    # 1,020 amber/red accounts without an issue: counted up to the cap, then "1,000+".
    assert context["missing_issues"].count_label == f"{COUNT_CAP:,}+"
    assert context["mismatched_issues"].count == 510
    assert context["fix_label"] == f"{COUNT_CAP + 510 + 1:,}+"
    html = large.content.decode()
    assert "show=missing_issues" in html and "Show all" in html
    # The htmx partial (the checks) costs the same too.
    partial, partial_queries = get(client, url, **HX)
    assert "<html" not in partial.content.decode()
    assert partial_queries == large_queries


def test_agenda_show_all_pages_through_a_section(client, manager, tam, team):
    book(tam, 300)
    client.force_login(manager)
    url = reverse("triage:agenda")
    first, queries = get(client, url, data={"show": "missing_issues"})
    section = first.context["missing_issues"]
    assert section.expanded and len(section) == PAGE_ROWS and section.more
    assert section.count == 200  # 300 amber/red, 100 with an issue
    second, second_queries = get(client, url, data={"show": "missing_issues", "page": 2})
    assert second_queries == queries
    rest = second.context["missing_issues"]
    assert len(rest) == PAGE_ROWS and not rest.more and rest.first == PAGE_ROWS + 1
    seen = [a.pk for a in section] + [a.pk for a in rest]
    assert len(set(seen)) == 200
    # Largest ARR first, across the pages.
    arrs = [a.arr for a in section] + [a.arr for a in rest]
    assert arrs == sorted(arrs, reverse=True)
    # The other sections stay capped while one is shown in full.
    assert len(second.context["mismatched_issues"]) == SECTION_ROWS
    html = second.content.decode()
    assert "show=missing_issues&amp;page=1" in html and "Show fewer" in html
    # A page past the end or a page that is not a number: an empty page or the first.
    assert (
        get(client, url, data={"show": "missing_issues", "page": 3})[0]
        .context["missing_issues"]
        .rows
        == []
    )
    assert (
        get(client, url, data={"show": "missing_issues", "page": "x"})[0]
        .context["missing_issues"]
        .page
        == 1
    )


def test_agenda_fix_keeps_the_page_it_was_made_from(client, manager, tam, team):
    accounts = book(tam, 60)
    client.force_login(manager)
    target = accounts[1]  # red, no issue
    response = client.post(
        reverse("triage:agenda_fix", args=[target.salesforce_id]) + "?show=missing_issues&page=1",
        **HX,
    )
    assert response.status_code == 200
    # The partial comes back with the list still expanded (its "Show fewer" link).
    assert "Show fewer" in response.content.decode()
    assert TriageIssue.objects.filter(account=target, status="open").exists()


@pytest.mark.parametrize("kind", ["colours", "regions"])
def test_board_columns_are_capped_and_cost_the_same_at_two_sizes(client, manager, tam, team, kind):
    client.force_login(manager)
    url = reverse(f"triage:board_{kind}")
    book(tam, 30, prefix="S")
    _, small_queries = get(client, url)
    book(tam, 900, prefix="L")
    large, large_queries = get(client, url)
    assert large_queries == small_queries <= 12
    assert len(large.content) < MAX_BYTES
    columns = {c.key: c for c in large.context["columns"]}
    busiest = columns["yellow"] if kind == "colours" else columns["US-EAST"]
    assert len(busiest.issues) == SECTION_ROWS and busiest.issues.more
    total = sum(c.issues.count for c in columns.values())
    assert total == TriageIssue.objects.filter(status="open").count() == 310
    # Show all: one column in pages, the others still capped.
    full, full_queries = get(client, url, data={"show": busiest.key, "page": 2})
    assert full_queries == large_queries
    column = {c.key: c for c in full.context["columns"]}[busiest.key]
    assert column.issues.expanded and column.issues.page == 2
    arrs = [i.account.arr for i in column.issues]
    assert arrs == sorted(arrs, reverse=True)


# Issue 12.4: 12 queries at most for every page. Measured cold: these tests run inside a
# transaction that wrote (the fixtures), so portfolio.datacache computes every value
# (`cached()` bypasses the cache until a write commits) and the counts are the pages' own
# queries; warm (cached) counts are lower, see tests/integration/test_page_caches.py.
QUERY_BUDGET = {
    "dashboard": 12,
    "tam_dashboard": 12,
    "account": 12,
    "engagement": 12,
    "team": 12,
    "board": 12,
    "agenda": 12,
}


@pytest.mark.parametrize("page", sorted(QUERY_BUDGET))
def test_page_queries_are_the_same_at_two_sizes(client, manager, tam, team, page):
    """Each page at 30 and at 600 accounts (half of them amber or red, a third with an
    open issue): the same number of queries, within the page's budget."""
    from django.core.cache import cache

    team.region_id = Region.objects.order_by("code").values_list("code", flat=True)[0]
    team.save()
    first = book(tam, 30, prefix="S")[0]
    users = {"dashboard": tam, "account": tam, "engagement": tam}
    urls = {
        "dashboard": "/",
        "tam_dashboard": reverse("ui:tam_dashboard", args=[tam.pk]),
        "account": reverse("ui:account", args=[first.salesforce_id]),
        "engagement": reverse("engagement:account", args=[first.salesforce_id]),
        "team": reverse("ui:team"),
        "board": reverse("triage:board_colours"),
        "agenda": reverse("triage:agenda"),
    }
    client.force_login(users.get(page, manager))
    counts = []
    for size in (0, 600):
        if size:
            book(tam, size, prefix="L")
        cache.clear()  # no cached figures: the page's own queries
        client.get(urls[page])  # warm up (content types, sessions)
        cache.clear()
        counts.append(get(client, urls[page])[1])
    assert counts[0] == counts[1] <= QUERY_BUDGET[page], counts
