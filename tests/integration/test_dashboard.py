"""The TAM's dashboard at / and /tam/<id>/: figures, the accounts table (filters, sort,
pagination, htmx partial), CSV export, scoping, and a query count that does not grow."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Account, Activity, ActivityKind, Region
from tests.factories import AccountFactory, ActivityFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _forget_visits():
    """The last-visit times live in Redis (TEST_REDIS_DB), which outlives a test."""
    from django.core.cache import cache

    cache.clear()


def bulk_accounts(tam, n: int, *, prefix: str = "Bulk") -> list[Account]:
    """n accounts for `tam` in one INSERT, with varied priority, health, region, renewal."""
    today = timezone.localdate()
    regions = list(Region.objects.values_list("code", flat=True))
    colours = ["green", "yellow", "amber", "red", ""]
    accounts = [
        Account(
            salesforce_id=f"001B{tam.pk:04d}{i:09d}",
            name=f"{prefix} {i:05d}",
            arr=Decimal(10_000 + 37 * i),
            region_id=regions[i % len(regions)],
            segment=["enterprise", "commercial", "public_sector"][i % 3],
            tam=tam,
            renewal_date=today + dt.timedelta(days=(i * 7) % 400),
            health=colours[i % 5],
            priority=[1, 2, 2, 3, 4, None][i % 6],
        )
        for i in range(n)
    ]
    created = Account.objects.bulk_create(accounts)
    Activity.objects.bulk_create(
        Activity(
            account=a,
            kind=ActivityKind.CADENCE_CALL,
            occurred_at=timezone.now() - dt.timedelta(days=i % 90),
            subject="Cadence",
        )
        for i, a in enumerate(created)
        if i % 2
    )
    return created


def test_dashboard_shows_headline_figures(client, tam):
    today = timezone.localdate()
    AccountFactory(
        tam=tam,
        name="Acme",
        arr=Decimal(1_000_000),
        priority=1,
        health="green",
        renewal_date=today + dt.timedelta(days=30),
    )
    AccountFactory(
        tam=tam,
        name="Globex",
        arr=Decimal(800_000),
        priority=2,
        health="red",
        renewal_date=today + dt.timedelta(days=200),
    )
    AccountFactory(name="Someone else's", arr=Decimal(5_000_000))
    client.force_login(tam)
    response = client.get(reverse("ui:home"))
    assert response.status_code == 200
    figures = response.context["figures"]
    assert figures["count"] == 2
    assert figures["book_arr"] == Decimal(1_800_000)
    assert (figures["p1"], figures["p2"]) == (1, 2 - 1)
    assert (figures["green"], figures["red"], figures["at_risk"]) == (1, 1, 1)
    assert figures["renewals_90"] == 1
    # Both are P1/P2 with no cadence call ever: overdue.
    assert figures["overdue"] == 2
    html = response.content.decode()
    assert "$1,800,000" in html and "50% of the $3,600,000 target" in html
    assert "Someone else" not in html
    assert '<title id="chart-t' in html  # accessible SVG charts


def test_overdue_counts_cadence_calls_within_30_and_60_days(client, tam):
    p1_recent = AccountFactory(tam=tam, priority=1)
    p1_stale = AccountFactory(tam=tam, priority=1)
    p2_45_days = AccountFactory(tam=tam, priority=2)
    AccountFactory(tam=tam, priority=3)  # no cadence for P3
    now = timezone.now()
    ActivityFactory(account=p1_recent, kind="cadence_call", occurred_at=now - dt.timedelta(days=10))
    ActivityFactory(account=p1_stale, kind="cadence_call", occurred_at=now - dt.timedelta(days=45))
    ActivityFactory(
        account=p2_45_days, kind="cadence_call", occurred_at=now - dt.timedelta(days=45)
    )
    ActivityFactory(account=p1_recent, kind="call", occurred_at=now)  # not a cadence call
    client.force_login(tam)
    response = client.get("/?overdue=on")
    assert response.context["figures"]["overdue"] == 1
    assert [a.pk for a in response.context["page"].object_list] == [p1_stale.pk]


def test_filters_search_sort_and_pagination(client, tam):
    bulk_accounts(tam, 60)
    AccountFactory(tam=tam, name="Zeta Needle", priority=1, health="red", arr=Decimal(9_999_999))
    client.force_login(tam)
    page = client.get("/", {"q": "needle"}).context["page"]
    assert [a.name for a in page.object_list] == ["Zeta Needle"]
    page = client.get("/", {"priority": 1, "health": "red"}).context["page"]
    assert all(a.priority == 1 and a.health == "red" for a in page.object_list)
    assert page.paginator.count == Account.objects.filter(tam=tam, priority=1, health="red").count()
    page = client.get("/", {"sort": "-arr"}).context["page"]
    assert page.object_list[0].name == "Zeta Needle"
    region = Region.objects.order_by("code").first().code
    page = client.get("/", {"region": region, "segment": "commercial"}).context["page"]
    assert (
        page.paginator.count
        == Account.objects.filter(tam=tam, region_id=region, segment="commercial").count()
    )
    page = client.get("/", {"renewal": "30"}).context["page"]
    limit = timezone.localdate() + dt.timedelta(days=30)
    assert page.paginator.count > 0
    assert all(a.renewal_date <= limit for a in page.object_list)
    first = client.get("/").context["page"]
    second = client.get("/", {"page": 2}).context["page"]
    assert first.paginator.num_pages == 3
    assert {a.pk for a in first.object_list}.isdisjoint({a.pk for a in second.object_list})


def test_bad_filter_values_still_show_the_table(client, tam):
    AccountFactory(tam=tam, name="Acme")
    client.force_login(tam)
    response = client.get("/", {"priority": "x", "sort": "nope", "page": "-3", "renewal": "7"})
    assert response.status_code == 200
    assert "Acme" in response.content.decode()


def test_htmx_request_returns_only_the_table_partial(client, tam):
    AccountFactory(tam=tam, name="Acme", priority=1)
    AccountFactory(tam=tam, name="Initech", priority=2)
    client.force_login(tam)
    response = client.get("/", {"priority": 1}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="accounts-table"')
    assert "Acme" in html and "Initech" not in html
    assert "<html" not in html and "Headline figures" not in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_table_links_keep_filters_for_bookmarking(client, tam):
    bulk_accounts(tam, 30)
    client.force_login(tam)
    html = client.get("/", {"health": "red", "per_page": 25}).content.decode()
    assert 'href="/?health=red&amp;sort=-arr"' in html
    response = client.get("/", {"priority": 2, "per_page": 25})
    assert response.context["next_url"] in ("", "/?priority=2&page=2")


def test_csv_export_streams_the_current_filter(client, tam):
    AccountFactory(tam=tam, name="Acme", priority=1, health="green")
    AccountFactory(tam=tam, name="Initech", priority=2, health="red")
    AccountFactory(name="Not mine", priority=1)
    client.force_login(tam)
    response = client.get(reverse("ui:accounts_csv"), {"priority": 1})
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["name"] for r in rows] == ["Acme"]
    assert rows[0]["priority"] == "P1" and rows[0]["cadence_overdue"] == "yes"


def test_manager_opens_a_team_tams_dashboard_but_not_an_outsiders(client, manager, tam, team):
    AccountFactory(tam=tam, name="Team account")
    outsider = UserFactory(role="TAM")
    AccountFactory(tam=outsider, name="Outsider account")
    client.force_login(manager)
    response = client.get(reverse("ui:tam_dashboard", args=[tam.pk]))
    assert response.status_code == 200
    assert "Team account" in response.content.decode()
    assert client.get(reverse("ui:tam_dashboard", args=[outsider.pk])).status_code == 404
    csv_response = client.get(reverse("ui:accounts_csv"), {"tam": outsider.pk})
    assert csv_response.status_code == 404


def test_tam_cannot_open_another_tams_dashboard(client, tam):
    other = UserFactory(role="TAM")
    client.force_login(tam)
    assert client.get(reverse("ui:tam_dashboard", args=[other.pk])).status_code == 404
    assert client.get(reverse("ui:tam_dashboard", args=[tam.pk])).status_code == 200


def test_last_visit_is_remembered_between_visits(client, tam):
    from django.core.cache import cache

    from ui.views import LAST_SEEN_KEY

    cache.delete(LAST_SEEN_KEY.format(tam.pk))
    client.force_login(tam)
    assert client.get("/").context["since"] is None
    earlier = timezone.now() - dt.timedelta(hours=5)
    cache.set(LAST_SEEN_KEY.format(tam.pk), {"previous": None, "latest": earlier})
    assert client.get("/").context["since"] == earlier
    # A reload within the same visit keeps pointing at the previous visit.
    assert client.get("/").context["since"] == earlier


@pytest.mark.parametrize("n", [10, 1000])
def test_dashboard_query_count_does_not_grow(client, tam, n, django_assert_max_num_queries):
    bulk_accounts(tam, n)
    client.force_login(tam)
    from django.core.cache import cache

    from ui.views import LAST_SEEN_KEY

    earlier = timezone.now() - dt.timedelta(days=2)
    cache.set(LAST_SEEN_KEY.format(tam.pk), {"previous": None, "latest": earlier})
    # Nothing cached (issue 12.4: <= 12): session, user (with its groups), regions, table
    # count + page, figures (renewals by month with them), P1 target (rule sets), health
    # history, changes since the last visit, open triage issues, the latest quarterly
    # review's changes, saved views.
    with django_assert_max_num_queries(12):
        response = client.get("/", {"sort": "health"})
    assert response.status_code == 200
    # A TAM's dashboard seen by their manager: the TAM too.
    manager = UserFactory(role="Manager")
    TeamFactory(manager=manager).tams.add(tam)
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("ui:tam_dashboard", args=[tam.pk]), {"sort": "renewal"})
    assert response.status_code == 200
    client.force_login(tam)
    # session, user, groups, regions, rule sets (cadence), table count + page.
    with django_assert_max_num_queries(7):
        response = client.get("/", {"priority": 2, "overdue": "on"}, **HTMX)
    assert response.status_code == 200


def test_changes_since_last_visit_come_from_the_account_history(client, tam):
    from django.core.cache import cache

    from portfolio.models import AccountEvent
    from ui.views import LAST_SEEN_KEY

    acme = AccountFactory(tam=tam, name="Acme", priority=2, health="green")
    AccountFactory(tam=tam, name="Quiet", priority=2, health="green")
    AccountEvent.objects.update(pgh_created_at=timezone.now() - dt.timedelta(days=3))
    last_visit = timezone.now() - dt.timedelta(days=1)
    cache.set(LAST_SEEN_KEY.format(tam.pk), {"previous": None, "latest": last_visit})
    acme.priority, acme.health = 1, "amber"
    acme.save(update_fields=["priority", "health"])
    client.force_login(tam)
    response = client.get("/")
    changes = response.context["changes"]
    assert [(c["name"], c["label"], c["old"], c["new"]) for c in changes] == [
        ("Acme", "priority", "P2", "P1"),
        ("Acme", "health", "green", "amber"),
    ]
    assert "Quiet" not in response.content.decode().split("Changes since")[1].split("</section>")[0]


def test_health_mix_over_time_uses_the_history(client, tam):
    from portfolio.models import AccountEvent

    now = timezone.now()
    a = AccountFactory(tam=tam, health="green")
    AccountFactory(tam=tam, health="red")
    created, changed = now - dt.timedelta(days=95), now - dt.timedelta(days=40)
    AccountEvent.objects.update(pgh_created_at=created)
    a.health = "amber"
    a.save(update_fields=["health"])
    AccountEvent.objects.filter(pgh_obj=a, pgh_label="update").update(pgh_created_at=changed)
    client.force_login(tam)
    response = client.get("/")
    series = response.context["health_series"]
    assert series[-1] == ("Today", {"green": 0, "yellow": 0, "amber": 1, "red": 1})
    # Each earlier column is the mix at the end of its month.
    month = timezone.localdate().replace(day=1)
    expected = []
    for _ in range(5):
        end = month
        month = (month - dt.timedelta(days=1)).replace(day=1)
        end_dt = dt.datetime.combine(end, dt.time.min, tzinfo=dt.UTC)
        if created >= end_dt:
            continue
        mix = {"amber": 1, "red": 1} if changed < end_dt else {"green": 1, "red": 1}
        expected.insert(0, (month.strftime("%b"), mix))
    assert series[:-1] == expected
    assert len(expected) >= 2
    assert "Health mix over time" in response.content.decode()


def test_the_tam_dashboard_lists_the_latest_quarterly_review_changes(client, tam, team, manager):
    from prioritization.models import ReviewCause
    from prioritization.services import priorities_reevaluate

    # Onboarding started and not complete: the review makes this P2 account a P1.
    moved = AccountFactory(
        tam=tam,
        name="Moved By Review Inc",
        priority=2,
        onboarding_started=timezone.localdate() - dt.timedelta(days=10),
        onboarding_completed=None,
    )
    priorities_reevaluate(cause=ReviewCause.QUARTERLY_REVIEW)
    moved.refresh_from_db()
    assert moved.priority == 1

    client.force_login(tam)
    html = client.get("/").content.decode()
    section = html.split("Priority changes since the last quarterly review", 1)[1]
    assert "Moved By Review Inc" in section.split("</section>", 1)[0]
    assert "P2 &rarr; " in section and "<strong>P1</strong>" in section

    # The manager sees the same list on that TAM's dashboard, not on their team home.
    client.force_login(manager)
    assert (
        "Moved By Review Inc"
        in client.get(f"/tam/{tam.pk}/")
        .content.decode()
        .split("Priority changes since the last quarterly review", 1)[1]
    )
    assert (
        "Priority changes since the last quarterly review" not in client.get("/").content.decode()
    )
