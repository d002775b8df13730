"""Trends on the dashboard and the team view (issue 15.6): health mix and ARR month by
month from the account history, the book against target; one aggregate query bounded to
a year of months, whatever the book's size; the demo carries a year of history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portfolio.models import Account, AccountEvent
from tests.factories import AccountFactory
from ui import panels

pytestmark = pytest.mark.django_db


def _backdate(days: int) -> None:
    AccountEvent.objects.update(pgh_created_at=timezone.now() - dt.timedelta(days=days))


def test_book_trend_reads_arr_and_health_at_each_months_end(tam):
    a = AccountFactory(tam=tam, arr=Decimal(100_000), health="green")
    AccountFactory(tam=tam, arr=Decimal(50_000), health="red")
    _backdate(100)
    a.arr, a.health = Decimal(300_000), "amber"
    a.save(update_fields=["arr", "health"])
    AccountEvent.objects.filter(pgh_obj=a, pgh_label="update").update(
        pgh_created_at=timezone.now() - dt.timedelta(days=45)
    )
    today = timezone.localdate()
    trend = panels.book_trend(Account.objects.filter(tam=tam), today=today)
    assert trend[-1]["label"] == "Today"
    assert trend[-1]["arr"] == Decimal(350_000)
    assert trend[-1]["mix"] == {"amber": 1, "red": 1}
    # The oldest month shown is the first whose end the history knows both accounts at.
    first = trend[0]
    assert first["arr"] == Decimal(150_000) and first["mix"] == {"green": 1, "red": 1}
    assert len(trend) <= panels.TREND_MONTHS
    months = [r["month"] for r in trend[:-1]]
    assert months == sorted(months)


@pytest.mark.parametrize("n", [3, 300])
def test_one_query_whatever_the_size(tam, n):
    Account.objects.bulk_create(
        Account(
            salesforce_id=f"001T{i:014d}", name=f"T {i}", arr=1000 + i, tam=tam, region_id="EMEA"
        )
        for i in range(n)
    )
    _backdate(200)
    with CaptureQueriesContext(connection) as queries:
        trend = panels.book_trend(Account.objects.filter(tam=tam), today=timezone.localdate())
    assert len(queries) == 1
    assert trend[-1]["count"] == n and len(trend) >= 6


def test_dashboard_and_team_view_show_the_trend_against_target(client, manager, tam, team):
    AccountFactory(tam=tam, arr=Decimal(4_000_000), health="green")
    _backdate(70)
    client.force_login(tam)
    html = client.get("/").content.decode()
    assert 'id="book-trend"' in html and "Book of business against target, by month" in html
    assert "of target)" in html
    client.force_login(manager)
    html = client.get("/team/").content.decode()
    assert 'id="team-book-trend"' in html and 'id="team-health-trend"' in html
    assert "$3.6M" in html  # one TAM: the target line is one book's target


def test_an_empty_scope_has_an_empty_trend(client):
    trend = panels.book_trend(Account.objects.none(), today=timezone.localdate())
    assert [r["label"] for r in trend] == ["Today"]


def test_demo_history_gives_a_year_of_trend_and_books_around_target(settings):
    from django.core.management import call_command

    call_command("load_demo", "--no-apps", stdout=open("/dev/null", "w"))  # noqa: SIM115
    tam_books = Account.objects.filter(tam__username__startswith="tam")
    trend = panels.book_trend(tam_books, today=timezone.localdate())
    assert len(trend) == panels.TREND_MONTHS
    assert trend[0]["arr"] < trend[-1]["arr"], "the demo books grew over the year"
    target = settings.BOOK_OF_BUSINESS_TARGET_USD
    from django.db.models import Sum

    books = [
        float(row["arr"])
        for row in tam_books.values("tam").annotate(arr=Sum("arr")).order_by("arr")
    ]
    assert len(books) == 15
    assert sum(b < target for b in books) >= 3 and sum(b > target for b in books) >= 3
    assert 0.6 * target < sum(books) / len(books) < 1.6 * target
