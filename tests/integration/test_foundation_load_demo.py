"""`manage.py load_demo`: a realistic demo book, deterministic and idempotent."""

from __future__ import annotations

import datetime as dt
import io
import sys
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Sum
from django.http import HttpRequest
from django.utils import timezone

from portfolio import demo_data
from portfolio.models import (
    Account,
    Activity,
    ActivityKind,
    Contact,
    Opportunity,
    SalesManager,
    Team,
)
from portfolio.selectors import accounts_for_user

pytestmark = pytest.mark.django_db


def load(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", "--no-apps", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        "users": get_user_model().objects.count(),
        "teams": Team.objects.count(),
        "team_members": Team.tams.through.objects.count(),
        "accounts": Account.objects.count(),
        "opportunities": Opportunity.objects.count(),
        "contacts": Contact.objects.count(),
        "contact_personas": Contact.personas.through.objects.count(),
        "sales_manager_regions": sorted(
            SalesManager.regions.through.objects.values_list(
                "salesmanager__user__username", "region_id"
            )
        ),
        "activities": Activity.objects.count(),
        "book": sorted(Account.objects.values_list("salesforce_id", "arr", "tam__username")),
    }


@pytest.fixture
def demo(db):
    load()
    return snapshot()


def test_running_twice_duplicates_nothing_and_keeps_passwords(demo, client):
    for username in ("tam1", "manager2", "admin", "sales1"):
        assert client.login(
            request=HttpRequest(), username=username, password=demo_data.DEMO_PASSWORD
        ), username
    tam = get_user_model().objects.get(username="tam1")
    tam.set_password("changed-by-the-user-42")
    tam.save(update_fields=["password"])
    # The apps own health and priority once an account exists (decisions, assessments).
    decided = Account.objects.filter(tam__isnull=False).order_by("salesforce_id").first()
    decided_priority = 1 if decided.priority == 2 else 2
    Account.objects.filter(pk=decided.pk).update(priority=decided_priority, health="red")
    events = decided.history.count()
    out = load()
    assert snapshot() == demo
    decided.refresh_from_db()
    assert (decided.priority, decided.health) == (decided_priority, "red")
    assert decided.history.count() == events, "a rerun adds no history"
    assert "accounts 1," in out and "(0 new)" in out
    assert out.count("\n") == 1, "one summary line"
    assert client.login(request=HttpRequest(), username="tam1", password="changed-by-the-user-42")
    # `make run` loads the demo once: --if-empty leaves an existing book alone.
    assert "already present" in load("--if-empty")
    assert snapshot() == demo


def test_demo_book_shape(demo):
    """One load, checked from every side (loading is the slow part)."""
    check_people_roles_and_teams()
    check_book_looks_like_a_real_book()
    check_opportunities_contacts_and_activities()


def check_people_roles_and_teams():
    user_model = get_user_model()
    by_group = dict(
        user_model.objects.filter(username__regex=r"^(tam|manager)\d+$|^admin$")
        .values_list("groups__name")
        .annotate(n=Count("id"))
    )
    assert by_group == {"TAM": 15, "Manager": 3, "Admin": 1}
    admin = user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    teams = Team.objects.annotate(n=Count("tams")).order_by("name")
    assert [t.n for t in teams] == [5, 5, 5]
    assert {t.manager.username for t in teams} == {"manager1", "manager2", "manager3"}
    # Every TAM has a book, and a manager sees exactly their team's accounts.
    tams = user_model.objects.filter(groups__name="TAM")
    assert all(accounts_for_user(t).exists() for t in tams)
    manager = user_model.objects.get(username="manager1")
    team_tams = Team.objects.get(manager=manager).tams.all()
    assert accounts_for_user(manager).count() == Account.objects.filter(tam__in=team_tams).count()
    # "Exceptions will be addressed to the regional Sales Management team": one demo sales
    # manager covers EMEA (README's demo logins table).
    sales = user_model.objects.get(username="sales1")
    assert list(sales.groups.values_list("name", flat=True)) == ["Sales Management"]
    assert list(sales.sales_manager.regions.values_list("code", flat=True)) == ["EMEA"]


def check_book_looks_like_a_real_book():
    accounts = Account.objects.all()
    assert 1400 <= accounts.count() <= 1600
    assert set(accounts.values_list("region", flat=True)) == set(demo_data.REGIONS)
    assert set(accounts.values_list("segment", flat=True)) == {
        "enterprise",
        "commercial",
        "public_sector",
    }
    arr = sorted(accounts.values_list("arr", flat=True), reverse=True)
    total = sum(arr)
    # A few large, many small: the top 10% hold most of the ARR; the median is small.
    assert sum(arr[: len(arr) // 10]) > total / 2
    assert arr[0] > Decimal(1_000_000)
    assert arr[len(arr) // 2] < Decimal(100_000)
    # Parents and children; unmanaged children (no TAM) and digital-only accounts (no TAM).
    unmanaged_children = accounts.filter(parent__isnull=False, tam__isnull=True)
    assert unmanaged_children.count() > 50
    assert accounts.filter(parent__isnull=False, tam__isnull=False).exists()
    assert accounts.filter(digital_only=True, tam__isnull=True).count() > 300
    assert not accounts.filter(digital_only=True, tam__isnull=False).exists()
    today = timezone.localdate()
    renewals = accounts.values_list("renewal_date", flat=True)
    assert min(renewals) >= today
    assert max(renewals) <= today + dt.timedelta(days=549)
    assigned = accounts.filter(tam__isnull=False)
    assert assigned.filter(onboarding_completed__isnull=True).exists(), "onboarding in progress"
    assert assigned.filter(onboarding_completed__isnull=False).count() > 300
    assert set(assigned.values_list("success_plan", flat=True)) == {"none", "objectives", "full"}
    assert assigned.filter(churn_risk=True).exists()
    assert assigned.filter(stage_adoption_hours_per_week__gt=2).exists()
    assert assigned.filter(org_change=True, region="EMEA").exists()
    assert accounts.filter(owner__isnull=True).count() == 0, "every account has an AE"
    # Books near the handbook's 3.6M USD target (within a factor of a few).
    books = assigned.values("tam").annotate(total=Sum("arr"))
    assert all(Decimal(1_000_000) < b["total"] < Decimal(20_000_000) for b in books)


def check_opportunities_contacts_and_activities():
    today = timezone.localdate()
    uptiers = Opportunity.objects.filter(type="Up-tier", is_closed=False)
    assert uptiers.filter(close_date__lte=today + dt.timedelta(days=183)).exists()
    assert uptiers.filter(close_date__gt=today + dt.timedelta(days=183)).exists()
    assert all(
        today + dt.timedelta(days=28) <= d <= today + dt.timedelta(days=366)
        for d in uptiers.values_list("close_date", flat=True)
    )
    assert all(o.type == "Up-tier" for o in uptiers[:10])
    closed = Opportunity.objects.filter(is_closed=True)
    assert closed.filter(is_won=True).exists() and closed.filter(is_won=False).exists()
    assert Contact.objects.filter(personas="development_lead").exists()
    assert Contact.objects.filter(personas="security_lead").exists()
    # "select the persona(s) that apply to them": some contacts hold both.
    assert Contact.objects.annotate(n=Count("personas")).filter(n=2).exists(), (
        "no demo contact holds both key personas"
    )
    without_persona = Account.objects.annotate(
        contacts_n=Count("contacts", distinct=True),
        personas_n=Count("contacts__personas"),
    ).filter(tam__isnull=False, contacts_n__gt=0, personas_n=0)
    assert without_persona.exists()
    kinds = set(Activity.objects.values_list("kind", flat=True))
    assert kinds == set(ActivityKind.values)
    year_ago = timezone.now() - dt.timedelta(days=366)
    assert not Activity.objects.filter(occurred_at__lt=year_ago).exists()
    assert not Activity.objects.filter(occurred_at__gt=timezone.now()).exists()


def test_generation_is_deterministic():
    thresholds = settings.TAM_ALIGNMENT_THRESHOLD_USD
    a = demo_data.generate(dt.date(2026, 11, 22), alignment_threshold=thresholds)
    b = demo_data.generate(dt.date(2026, 11, 22), alignment_threshold=thresholds)
    assert a.accounts == b.accounts
    assert a.activities == b.activities


def test_app_hooks_run_in_order_and_missing_ones_are_skipped(db, monkeypatch):
    """Each local app's `<app>.demo.populate(stdout=...)` runs after the core data."""
    calls: list[tuple[str, int]] = []

    class Hook:
        def __init__(self, app: str) -> None:
            self.app = app

        def populate(self, *, stdout=None) -> None:
            calls.append((self.app, Account.objects.count()))
            stdout.write(f"{self.app} demo ok")

    monkeypatch.setitem(sys.modules, "integrations.demo", Hook("integrations"))
    monkeypatch.setitem(sys.modules, "portfolio.demo", None)  # an app without demo data
    monkeypatch.setitem(sys.modules, "prioritization.demo", Hook("prioritization"))
    monkeypatch.setitem(sys.modules, "triage.demo", object())  # a module without populate
    monkeypatch.setitem(sys.modules, "engagement.demo", Hook("engagement"))
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert [app for app, _ in calls] == ["integrations", "prioritization", "engagement"]
    assert all(n > 1400 for _, n in calls), "hooks run after the core data"
    assert "prioritization demo ok" in out.getvalue()
    assert "integrations, prioritization, engagement" in out.getvalue()


def test_a_failing_app_hook_leaves_no_half_made_demo(db, monkeypatch):
    class Broken:
        @staticmethod
        def populate(*, stdout=None) -> None:
            raise RuntimeError("engagement demo is broken")

    for app in ("integrations", "portfolio", "prioritization", "triage"):
        monkeypatch.setitem(sys.modules, f"{app}.demo", None)
    monkeypatch.setitem(sys.modules, "engagement.demo", Broken)
    with pytest.raises(RuntimeError, match="engagement demo is broken"):
        call_command("load_demo", stdout=io.StringIO())
    assert not Account.objects.exists()
    assert not get_user_model().objects.filter(username="tam1").exists()
