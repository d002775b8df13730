"""What the engagement panel checks of an account's expected engagement (issue 14, points 2,
3, 4, 9, 14), against the seeded rule sets, and the dashboard's cadence agreeing with it.
Each test quotes the handbook line it reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from engagement import rules, selectors
from engagement.cadence import with_cadence
from engagement.services import cadence_calls
from portfolio.models import Account, Activity, ActivityKind, CallOutcome
from prioritization.models import RuleSet
from tests.factories import AccountFactory, ActivityFactory
from triage.models import HealthSignals
from triage.selectors import signals_for_accounts
from ui.selectors import team_workload

pytestmark = pytest.mark.django_db

NOW = timezone.now()
HTMX = {"HTTP_HX_REQUEST": "true"}


def _call(account, days_ago, outcome="", kind=ActivityKind.CADENCE_CALL):
    return ActivityFactory(
        account=account,
        kind=kind,
        occurred_at=NOW - dt.timedelta(days=days_ago),
        subject=f"{kind} {days_ago}",
        outcome=outcome,
    )


def _overdue_on_dashboard(account) -> bool:
    return with_cadence(Account.objects.filter(pk=account.pk), now=NOW).get().cadence_overdue


def _plan(account, n):
    from engagement.models import SuccessObjective

    start = SuccessObjective.objects.filter(account=account).count()
    for k in range(start, start + n):
        objective = SuccessObjective.objects.create(account=account, title=f"O{k}", status="green")
        objective.tasks.create(title="t")


# --- Point 2: the fully green success plan is Commercial P1's -----------------------------


def test_a_fully_green_plan_is_required_of_a_commercial_p1_only(tam):
    """tam-account-engagement.md, Commercial Engagement Guidelines, Priority 1: "Success
    Planning: Fully “green” success plan ... with at least 3 objectives". The Enterprise
    Priority Definitions ("Pr1: TAM-led onboarding, monthly cadence call (as minimum), full
    TAM-led customer lifecycle") ask none."""
    enterprise = AccountFactory(tam=tam, priority=1, segment="enterprise")
    commercial = AccountFactory(tam=tam, priority=1, segment="commercial")
    commercial_p2 = AccountFactory(tam=tam, priority=2, segment="commercial")
    for account in (enterprise, commercial, commercial_p2):
        _plan(account, 1)
    assert not selectors.account_engagement_panel(enterprise)["success_plan_gap"]
    assert not selectors.account_engagement_panel(commercial_p2)["success_plan_gap"]
    assert selectors.account_engagement_panel(commercial)["success_plan_gap"]
    _plan(commercial, 2)
    assert not selectors.account_engagement_panel(commercial)["success_plan_gap"]
    assert RuleSet.objects.filter(model="commercial", p1_full_success_plan_required=True).exists()
    assert not RuleSet.objects.exclude(model="commercial").filter(
        p1_full_success_plan_required=True
    )


# --- Point 3: EBR minimums are rule-set fields; one count -----------------------------------


def test_ebr_minimums_are_rule_set_fields_and_the_enterprise_default_is_a_reading():
    """Commercial Priority 1: "Executive Business Reviews: 1-2 per year"; Priority 2:
    "Executive Business Reviews: TAM discretion"; Enterprise: "Pr2: 60 day call cadence,
    EBR, renewal touch point" (no number: Portfolio's reading, marked)."""
    help_p1 = RuleSet._meta.get_field("p1_ebrs_min_per_year").help_text
    help_p2 = RuleSet._meta.get_field("p2_ebrs_min_per_year").help_text
    assert '"Executive Business Reviews: 1-2 per year"' in help_p1
    assert '"Executive Business Reviews: TAM discretion"' in help_p2
    assert "Pr2: 60 day call cadence, EBR, renewal touch point" in help_p2

    commercial = RuleSet.objects.get(region_id="US-EAST", segment="commercial")
    assert (commercial.p1_ebrs_min_per_year, commercial.p2_ebrs_min_per_year) == (1, None)
    assert commercial.ebrs_reading == ""
    enterprise = RuleSet.objects.get(region_id="US-EAST", segment="enterprise")
    assert (enterprise.p1_ebrs_min_per_year, enterprise.p2_ebrs_min_per_year) == (1, 1)
    assert enterprise.ebrs_reading.startswith("Portfolio's reading")
    assert "reading" in enterprise.p1_ebrs_per_year and "reading" in enterprise.p2_ebrs_per_year
    # Completing the seed: the seeded version (1) holds the values, no new version.
    latest = enterprise.versions.order_by("-version").first()
    assert latest.version == enterprise.version == 1 and enterprise.versions.count() == 1
    assert latest.values["p2_ebrs_min_per_year"] == 1
    assert latest.values["ebrs_reading"] == enterprise.ebrs_reading


def test_the_panel_shows_the_reading_beside_the_minimum(client, tam):
    account = AccountFactory(tam=tam, priority=1, segment="enterprise")
    client.force_login(tam)
    url = reverse("engagement:section", args=[account.salesforce_id, "cadence"])
    html = client.get(url, **HTMX).content.decode()
    assert "EBRs in the last 12 months" in html
    assert "at least 1 a year; Portfolio&#x27;s reading" in html


def test_the_panel_and_the_health_signal_count_ebrs_over_the_same_12_months(tam):
    """tam-account-triage.md, Green: "At least two successful EBRs every year."; Commercial
    P1: "Executive Business Reviews: 1-2 per year". One count for both."""
    account = AccountFactory(tam=tam, priority=1, segment="commercial", nps=None)
    for days in (30, 300, 400):
        _call(account, days, kind=ActivityKind.EBR)
    _call(account, 10, CallOutcome.MISSED, kind=ActivityKind.EBR)  # not held
    panel = selectors.account_engagement_panel(account, now=NOW)["cadence"]
    signal = signals_for_accounts([account], now=NOW)[account.pk]
    assert panel["ebrs_12_months"] == signal.ebrs_last_12_months == 2


# --- Point 4: the alignment threshold matters when the customer downgrades or churns ----------


def test_below_the_alignment_threshold_is_flagged_only_when_the_customer_downgrades(tam):
    """tam-account-engagement.md: "A customer downgrades or churns and is below the TAM
    alignment threshold". Reading: the TAM's red signal "They've told us they are
    downgrading/cancelling"."""
    small = AccountFactory(tam=tam, priority=2, segment="enterprise", arr=40_000)
    assert not selectors.account_engagement_panel(small)["below_alignment_threshold"]
    small.churn_risk = True  # a risk is not a downgrade
    small.save(update_fields=["churn_risk"])
    assert not selectors.account_engagement_panel(small)["below_alignment_threshold"]
    HealthSignals.objects.create(account=small, downgrading_or_cancelling=True)
    panel = selectors.account_engagement_panel(small)
    assert panel["below_alignment_threshold"] and panel["alignment_threshold"] == 100_000
    large = AccountFactory(tam=tam, priority=2, segment="enterprise", arr=400_000)
    HealthSignals.objects.create(account=large, downgrading_or_cancelling=True)
    assert not selectors.account_engagement_panel(large)["below_alignment_threshold"]


# --- Point 9: the Commercial onboarding cadence -------------------------------------------


@pytest.mark.parametrize("priority", [1, 2])
def test_an_onboarding_commercial_account_is_overdue_after_28_days(tam, priority):
    """tam-account-engagement.md, Commercial Priority 1: "Onboarding: Kick-off call + meet
    every 2-4 weeks"; Priority 2: "Kick-off call + digital, check-in calls every 2-4 weeks".
    Reading: 28 days. The panel, the dashboard and the team view agree."""
    account = AccountFactory(
        tam=tam,
        priority=priority,
        segment="commercial",
        onboarding_started=(NOW - dt.timedelta(days=40)).date(),
        onboarding_completed=None,
    )
    _call(account, 29)
    expectations = selectors.expectations_for(account)
    assert expectations["cadence_days"] == 28 and expectations["onboarding_cadence"]
    assert selectors.account_engagement_panel(account, now=NOW)["cadence"]["status"].overdue
    assert _overdue_on_dashboard(account)
    assert selectors.overdue_cadence_for_tams([tam], now=NOW)[tam.pk] == 1
    assert team_workload(tam)[0]["overdue"] == 1

    account.onboarding_completed = (NOW - dt.timedelta(days=1)).date()
    account.save(update_fields=["onboarding_completed"])
    assert not selectors.account_engagement_panel(account, now=NOW)["cadence"]["status"].overdue
    assert not _overdue_on_dashboard(account)


def test_an_onboarding_enterprise_account_keeps_its_monthly_cadence(tam):
    """The 2-4 weeks are the Commercial guideline's; Enterprise: "Pr1: TAM-led onboarding,
    monthly cadence call (as minimum)"."""
    account = AccountFactory(
        tam=tam,
        priority=1,
        segment="enterprise",
        onboarding_started=(NOW - dt.timedelta(days=40)).date(),
        onboarding_completed=None,
    )
    _call(account, 29)
    assert selectors.expectations_for(account)["cadence_days"] == 30
    assert not selectors.account_engagement_panel(account, now=NOW)["cadence"]["status"].overdue
    assert not _overdue_on_dashboard(account)


# --- Point 14: call outcomes ------------------------------------------------------------------


def test_outcomes_are_the_same_in_the_model_and_the_rules():
    assert set(CallOutcome.values) == {o.value for o in rules.CallOutcome}


def test_a_missed_or_rescheduled_call_is_not_the_cadence_call(tam):
    """tam-account-triage.md: "Frequently don't show up or are late to scheduled cadence
    calls." A missed call was scheduled and did not happen: the call is still owed."""
    account = AccountFactory(tam=tam, priority=1)
    _call(account, 40, CallOutcome.HELD)
    _call(account, 5, CallOutcome.MISSED)
    _call(account, 3, CallOutcome.RESCHEDULED)
    panel = selectors.account_engagement_panel(account, now=NOW)["cadence"]
    assert (
        panel["status"].overdue
        and panel["status"].last.date() == (NOW - dt.timedelta(days=40)).date()
    )
    assert _overdue_on_dashboard(account)
    assert team_workload(tam)[0]["overdue"] == 1
    _call(account, 1, CallOutcome.LATE)  # held, the customer came late
    assert not selectors.account_engagement_panel(account, now=NOW)["cadence"]["status"].overdue
    assert not _overdue_on_dashboard(account)


def test_attendance_is_read_from_recorded_outcomes_only(tam):
    """tam-account-triage.md, Amber: "Frequently don't show up or are late to scheduled
    cadence calls."; Green: "Always show up to regular cadence calls and communicates when
    they can't." Two calls held in 180 days of a monthly P1 cadence used to read as amber."""
    account = AccountFactory(tam=tam, priority=1, nps=None)
    _call(account, 20)
    _call(account, 100)
    signals = lambda: signals_for_accounts([account], now=NOW)[account.pk]  # noqa: E731
    assert signals().cadence_attendance is None  # no outcome recorded: unknown
    Activity.objects.filter(account=account).update(outcome=CallOutcome.HELD)
    assert signals().cadence_attendance == "always"
    _call(account, 50, CallOutcome.RESCHEDULED)  # the customer said they could not make it
    assert signals().cadence_attendance == "always"
    _call(account, 60, CallOutcome.MISSED)
    assert signals().cadence_attendance == "sometimes_late"
    _call(account, 70, CallOutcome.LATE)
    assert signals().cadence_attendance == "often_absent"  # 2 of 4: frequently
    _call(account, 200, CallOutcome.MISSED)  # outside the 180 days
    assert signals().cadence_attendance == "often_absent"


def test_the_cadence_form_records_the_outcome(client, tam):
    account = AccountFactory(tam=tam, priority=1)
    client.force_login(tam)
    url = reverse("engagement:cadence", args=[account.salesforce_id])
    when = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    data = {"kind": "cadence_call", "occurred_at": when, "subject": "Monthly", "outcome": "missed"}
    html = client.post(url, data, **HTMX).content.decode()
    assert Activity.objects.get(account=account).outcome == "missed"
    assert "Missed: the customer did not show up" in html
    assert "overdue" in html.split("Next call due")[1].split("</dd>")[0]  # still owed
    client.post(url, {**data, "outcome": "held", "subject": "Monthly again"}, **HTMX)
    assert Activity.objects.filter(account=account, outcome="held").count() == 1
    bad = client.post(url, {**data, "outcome": "maybe", "subject": "x"}, **HTMX)
    assert "Select a valid choice" in bad.content.decode()
    activity = cadence_calls.cadence_log(
        account=account,
        kind="ebr",
        occurred_at=timezone.now(),
        subject="EBR",
        body="",
        user=tam,
    )
    assert activity.outcome == "held"  # the default
