"""Issue 16: health and priority read product usage; the TAM's answer still wins and the
trace says which source decided; the account page's usage panel and the account page keep
a fixed number of queries with 24 months of usage."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from prioritization.facts import build_facts
from prioritization.models import RuleSet
from tests import factories
from triage.models import HealthAssessment, HealthSignals
from triage.selectors import signals_for_accounts
from triage.services import assessments
from usage import services
from usage.models import Release
from usage.selectors import month_start

pytestmark = pytest.mark.django_db


def _load(account, *, months: int = 2, active=(600, 412), seats=1000, **latest):
    """`months` months of usage ending this month; adoption falls to `active[-1]`."""
    today = timezone.localdate()
    rows = []
    for back in range(months - 1, -1, -1):
        period = f"{month_start(today, back):%Y-%m}"
        value = active[-1] if back == 0 else active[0]
        rows += [
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "active_users",
                "value": value,
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "licensed_seats",
                "value": seats,
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "tickets_opened",
                "value": latest.get("tickets", 3),
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "version",
                "value": latest.get("version", "16.4"),
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "stages_in_use",
                "value": latest.get("stages", 4),
            },
            {
                "account": account.salesforce_id,
                "period": period,
                "metric": "ci_pipelines",
                "value": 1200 + back,
            },
        ]
    result = services.usage_import(
        rows=(services.staged_from_record(i, r) for i, r in enumerate(rows)),
        trigger="test",
        assess=False,
    )
    assert result.rejected == []


@pytest.fixture
def releases():
    for version, day in (("16.0", "2023-05-18"), ("17.0", "2024-05-16"), ("18.0", "2025-05-15")):
        Release.objects.create(version=version, released_on=day)


def test_the_automatic_run_reads_usage_with_evidence_and_source(tam, releases):
    account = factories.AccountFactory(tam=tam)
    _load(account, tickets=18)
    assessments.health_assess(account_ids=[account.pk])
    assessment = HealthAssessment.objects.get(account=account, is_current=True)
    reasons = {r["signal"]: r for r in assessment.reasons}
    month = month_start(timezone.localdate()).strftime("%b")
    assert reasons["user_adoption"] == {
        "signal": "user_adoption",
        "colour": "amber",
        "detail": "Low user adoption",
        "source": "usage",
        "evidence": f"412 of 1,000 seats active in {month} (41%) — below 50%",
    }
    assert reasons["adoption_dropped"]["colour"] == "amber"
    assert reasons["major_releases_behind"]["evidence"].endswith("2 major releases behind")
    assert reasons["tickets_per_month"]["colour"] == "amber"
    assert assessment.suggested_colour in ("amber", "red")
    assert assessment.signals["user_adoption"] == "low"


def test_the_tams_answer_wins_and_the_usage_figures_stay_beside_it(tam, releases):
    account = factories.AccountFactory(tam=tam)
    _load(account)
    HealthSignals.objects.create(account=account, user_adoption="healthy")
    assessments.health_assess(account_ids=[account.pk])
    reason = next(
        r
        for r in HealthAssessment.objects.get(account=account, is_current=True).reasons
        if r["signal"] == "user_adoption"
    )
    assert reason["colour"] == "green" and reason["source"] == "tam"
    assert reason["evidence"].startswith("usage data: 412 of 1,000 seats active")


def test_the_rule_sets_threshold_decides(tam):
    account = factories.AccountFactory(tam=tam)
    RuleSet.objects.filter(region=account.region, segment=account.segment).update(
        usage_adoption_low_below=Decimal("0.40")
    )
    _load(account)
    signals = signals_for_accounts([account])[account.pk]
    assert signals.user_adoption is None  # 41% is neither low (< 40%) nor healthy (>= 70%)


def test_signals_with_usage_take_a_fixed_number_of_queries(tam, django_assert_num_queries):
    small = [factories.AccountFactory(tam=tam) for _ in range(2)]
    for a in small:
        _load(a)
    with django_assert_num_queries(5):
        signals_for_accounts(small)
    large = small + [factories.AccountFactory(tam=tam) for _ in range(6)]
    for a in large[2:]:
        _load(a, months=24)
    with django_assert_num_queries(5):
        signals_for_accounts(large)


def test_the_priority_facts_read_the_stages_in_use_unless_the_tam_gave_them(tam):
    from_usage = factories.AccountFactory(tam=tam, stages_adopted=0)
    typed = factories.AccountFactory(tam=tam, stages_adopted=2)
    for a in (from_usage, typed):
        _load(a, stages=5)
    facts = {
        row.id: f
        for row, f in build_facts([from_usage.pk, typed.pk], as_of=timezone.localdate(), mapping={})
    }
    assert facts[from_usage.pk].stages_adopted == 5
    assert facts[from_usage.pk].stages_adopted_source == "usage"
    assert facts[typed.pk].stages_adopted == 2 and facts[typed.pk].stages_adopted_source == ""


def _queries(client, url: str, **headers) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_usage_panel_and_account_page_queries_do_not_grow_with_history(client, tam, releases):
    short, long = factories.AccountFactory(tam=tam), factories.AccountFactory(tam=tam)
    _load(short, months=2)
    _load(long, months=24)
    client.force_login(tam)
    client.get(reverse("ui:home"))  # session and caches warm
    counts = {}
    for account in (short, long):
        panel = reverse("usage:account", args=[account.salesforce_id])
        n_panel, html = _queries(client, panel, HTTP_HX_REQUEST="true")
        assert "412 of 1,000 seats active" in html and "chart-usage" in html
        assert "<html" not in html  # the partial
        n_page, page = _queries(client, reverse("ui:account", args=[account.salesforce_id]))
        assert panel in page  # loaded right after the page shows (hx-trigger="load")
        counts[account.pk] = (n_panel, n_page)
    assert counts[short.pk] == counts[long.pk]
    assert counts[long.pk][0] <= 12
    full = client.get(reverse("usage:account", args=[long.salesforce_id]))
    assert "<html" in full.content.decode()  # without JS: a page of its own


def test_the_panel_is_404_for_an_account_the_user_may_not_see(client, tam):
    other = factories.AccountFactory()
    client.force_login(tam)
    assert client.get(f"/usage/account/{other.salesforce_id}/").status_code == 404


def test_the_dashboard_table_shows_adoption_and_its_change_in_fixed_queries(client, tam):
    first = factories.AccountFactory(tam=tam, name="Adopting Co")
    _load(first)
    client.force_login(tam)
    client.get(reverse("ui:home"))
    few, html = _queries(client, reverse("ui:home"))
    assert "41%" in html and "-19 pts" in html and "adoption-drop" in html
    for _ in range(8):
        _load(factories.AccountFactory(tam=tam), months=24)
    many, _ = _queries(client, reverse("ui:home"))
    assert few == many


def test_the_health_panel_shows_the_evidence_and_who_answered(client, tam, releases):
    account = factories.AccountFactory(tam=tam)
    _load(account)
    assessments.health_assess(account_ids=[account.pk])
    client.force_login(tam)
    html = client.get(reverse("ui:account", args=[account.salesforce_id])).content.decode()
    assert "Low user adoption" in html and "412 of 1,000 seats active" in html
    assert "(answered by: usage)" in html
