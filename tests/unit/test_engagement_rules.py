"""The engagement app's pure rules: no database, no Django."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from engagement import rules
from engagement.rules import ObjectiveFacts

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


# --- Checklists -------------------------------------------------------------------------


def test_new_customer_checklist_follows_the_handbook_order():
    keys = [s.key for s in rules.NEW_CUSTOMER_STEPS]
    assert keys == [
        "sa_create_project",
        "tam_assign",
        "confirm_template",
        "please_read",
        "welcome_call",
        "move_post_sales",
    ]
    assert rules.NEW_CUSTOMER_STEPS[0].who == "Solutions Architect"
    assert "between step 3 and step 7" in rules.NEW_CUSTOMER_STEPS[0].source


def test_upgrade_checklist_starts_with_the_tam_assignment():
    assert [s.key for s in rules.UPGRADE_STEPS] == [
        "tam_assign",
        "confirm_project",
        "confirm_template",
        "please_read",
    ]


def test_commercial_accounts_have_the_tam_create_the_project_and_the_ae_hold_the_call():
    steps = {s.key: s for s in rules.steps_for("new_customer", "commercial")}
    assert steps["sa_create_project"].who == "Technical Account Manager"
    assert steps["welcome_call"].who == "Account Executive"
    assert [s.key for s in rules.steps_for("new_customer", "commercial")] == [
        s.key for s in rules.NEW_CUSTOMER_STEPS
    ]
    assert rules.steps_for("new_customer", "enterprise") == rules.NEW_CUSTOMER_STEPS
    assert not any(s.may_be_not_needed for s in rules.steps_for("new_customer", "commercial"))


def test_commercial_upgrade_lets_the_tam_decide_whether_a_project_is_needed():
    """tam-account-engagement.md, Start a customer upgrade engagement: "For Commercial
    accounts, the TAM will determine if it is beneficial to have a customer project." """
    commercial = {s.key: s for s in rules.steps_for("upgrade", "commercial")}
    assert list(commercial) == [s.key for s in rules.UPGRADE_STEPS]
    step = commercial["confirm_project"]
    assert step.may_be_not_needed and step.who == "Technical Account Manager"
    assert "determine if it is beneficial" in step.source
    # Enterprise (and every other segment) keeps the handbook's required project step.
    for segment in ("enterprise", "public_sector"):
        assert rules.steps_for("upgrade", segment) == rules.UPGRADE_STEPS
    assert not any(s.may_be_not_needed for s in rules.UPGRADE_STEPS)


def test_project_path_is_a_stable_slug_with_the_accounts_suffix():
    suffix = rules.project_suffix("001X")
    assert len(suffix) == 8 and suffix == rules.project_suffix("001X")  # stable
    assert rules.project_path_for("Acme Rockets, Inc.", "001X") == f"acme-rockets-inc-{suffix}"
    assert rules.project_path_for("Société Générale", "001X") == f"societe-generale-{suffix}"
    assert rules.project_path_for("???", "001ABC") == f"001abc-{rules.project_suffix('001ABC')}"


def test_names_that_slug_alike_get_different_paths():
    # Salesforce 15-character ids may differ by case alone; GitLab paths ignore case.
    one = rules.project_path_for("Zephyr Aerospace LLC", "0015g00000ZephAA")
    two = rules.project_path_for("ZEPHYR AEROSPACE LLC.", "0015g00000ZEPHAA")
    assert one.startswith("zephyr-aerospace-llc-") and two.startswith("zephyr-aerospace-llc-")
    assert one.lower() != two.lower()


def test_project_name_keeps_to_gitlabs_name_rule():
    assert rules.project_name_for("Acme Rockets, Inc.") == "Acme Rockets Inc."
    assert rules.project_name_for("AT&T (EMEA)") == "AT T EMEA"
    assert rules.project_name_for("...") == "Customer"
    assert (
        rules.project_alternative_name_for("AT&T", "001X") == f"AT T {rules.project_suffix('001X')}"
    )


# --- Cadence and EBRs -------------------------------------------------------------------


def test_cadence_overdue_after_the_expected_days():
    last = NOW - dt.timedelta(days=31)
    status = rules.cadence_status(cadence_days=30, last_call=last, now=NOW)
    assert status.overdue and status.days_overdue == 1
    assert status.next_due == last + dt.timedelta(days=30)
    fresh = rules.cadence_status(cadence_days=30, last_call=NOW - dt.timedelta(days=29), now=NOW)
    assert not fresh.overdue and fresh.days_overdue == 0


def test_no_call_ever_is_overdue_and_no_cadence_never_is():
    assert rules.cadence_status(cadence_days=90, last_call=None, now=NOW).overdue
    assert not rules.cadence_status(cadence_days=None, last_call=None, now=NOW).overdue


@given(days=st.integers(1, 400), ago=st.integers(0, 800))
def test_a_longer_cadence_is_never_more_overdue(days, ago):
    last = NOW - dt.timedelta(days=ago)
    short = rules.cadence_status(cadence_days=days, last_call=last, now=NOW)
    longer = rules.cadence_status(cadence_days=days + 30, last_call=last, now=NOW)
    assert longer.days_overdue <= short.days_overdue
    assert not (longer.overdue and not short.overdue)


def test_ebrs_behind_counts_against_the_rule_sets_minimum():
    """tam-account-engagement.md, Commercial Priority 1: "Executive Business Reviews: 1-2
    per year" (minimum 1); Priority 2: "Executive Business Reviews: TAM discretion" (none)."""
    assert rules.ebrs_behind(held=0, minimum=1)
    assert not rules.ebrs_behind(held=1, minimum=1)
    assert not rules.ebrs_behind(held=0, minimum=None)


def test_ebrs_are_counted_over_twelve_months_and_the_enterprise_default_is_a_reading():
    """tam-account-engagement.md: "Pr2: 60 day call cadence, EBR, renewal touch point" gives
    no number, and the Priority Definitions give P1 none at all: the default (one a year,
    no longer Commercial's "1-2") says it is Portfolio's reading. tam-account-triage.md:
    "At least two successful EBRs every year" is counted over the same 12 months."""
    assert rules.EBR_WINDOW_DAYS == 365
    assert rules.DEFAULT_EBRS_MIN_PER_YEAR == {1: 1, 2: 1}
    assert rules.DEFAULT_EBRS_READING.startswith("Portfolio's reading")
    assert not hasattr(rules, "DEFAULT_EBRS_PER_YEAR")  # the copied "1-2"


def test_onboarding_commercial_account_is_overdue_after_four_weeks():
    """tam-account-engagement.md, Commercial Priority 1: "Onboarding: Kick-off call + meet
    every 2-4 weeks"; Priority 2: "Kick-off call + digital, check-in calls every 2-4 weeks".
    Reading: 28 days (the rule set's onboarding cadence), sooner than the monthly call."""
    days = rules.expected_cadence_days(cadence_days=30, onboarding_cadence_days=28, onboarding=True)
    assert days == 28
    last = NOW - dt.timedelta(days=29)
    assert rules.cadence_status(cadence_days=days, last_call=last, now=NOW).overdue
    assert not rules.cadence_status(cadence_days=30, last_call=last, now=NOW).overdue
    quarterly = rules.expected_cadence_days(
        cadence_days=90, onboarding_cadence_days=28, onboarding=True
    )
    assert quarterly == 28  # Commercial P2 onboarding: "check-in calls every 2-4 weeks"
    done = rules.expected_cadence_days(
        cadence_days=90, onboarding_cadence_days=28, onboarding=False
    )
    assert done == 90
    assert (
        rules.expected_cadence_days(cadence_days=30, onboarding_cadence_days=None, onboarding=True)
        == 30
    )
    assert (
        rules.expected_cadence_days(cadence_days=None, onboarding_cadence_days=28, onboarding=True)
        is None
    )


def test_only_a_missed_or_rescheduled_call_leaves_the_cadence_owed():
    """tam-account-triage.md: "Frequently don't show up or are late to scheduled cadence
    calls." A late call was held; a missed or rescheduled one was not."""
    assert set(rules.HELD_OUTCOMES) == {"", "held", "late"}
    assert {o.value for o in rules.CallOutcome} == {"held", "late", "missed", "rescheduled"}


# --- Success plans ----------------------------------------------------------------------


def test_success_plan_states():
    green = ObjectiveFacts("green", 2)
    assert rules.success_plan_state([]) == "none"
    assert rules.success_plan_state([green, green]) == "objectives"  # fewer than 3
    assert rules.success_plan_state([green] * 3) == "full"
    assert rules.success_plan_state([green, green, ObjectiveFacts("yellow", 1)]) == "objectives"
    assert rules.success_plan_state([green, green, ObjectiveFacts("green", 0)]) == "objectives"


objective = st.builds(
    ObjectiveFacts, status=st.sampled_from(["green", "yellow", "red"]), task_count=st.integers(0, 5)
)


def test_only_a_commercial_p1_owes_a_fully_green_plan():
    """tam-account-engagement.md, Commercial Engagement Guidelines, Priority 1: "Success
    Planning: Fully “green” success plan ... with at least 3 objectives". The Enterprise
    "Pr1: TAM-led onboarding, monthly cadence call (as minimum), full TAM-led customer
    lifecycle" asks none: the rule set says whether it is required."""
    assert rules.success_plan_gap(priority=1, full_plan_required=True, state="objectives")
    assert not rules.success_plan_gap(priority=1, full_plan_required=True, state="full")
    assert not rules.success_plan_gap(priority=1, full_plan_required=False, state="none")
    assert not rules.success_plan_gap(priority=2, full_plan_required=True, state="none")


@given(st.lists(objective, max_size=8), objective)
def test_adding_an_objective_that_is_not_green_never_makes_a_plan_full(objectives, extra):
    if extra.status == "green" and extra.task_count:
        return
    assert rules.success_plan_state([*objectives, extra]) != "full"


@given(st.lists(objective, max_size=2))
def test_fewer_than_three_objectives_are_never_full(objectives):
    assert rules.success_plan_state(objectives) in ("none", "objectives")


# --- Personas, customer issues, disengagement -------------------------------------------


def test_missing_personas():
    assert rules.missing_personas(set()) == ["development_lead", "security_lead"]
    assert rules.missing_personas({"development_lead"}) == ["security_lead"]
    assert rules.missing_personas({"development_lead", "security_lead"}) == []


def test_issue_waiting_for_an_answer_and_slow():
    opened = NOW - dt.timedelta(days=3)
    waiting = rules.issue_response(
        created_at=opened, last_customer_at=None, last_answer_at=None, now=NOW
    )
    assert waiting.awaiting_answer and waiting.slow and waiting.waiting_since == opened
    answered = rules.issue_response(
        created_at=opened, last_customer_at=None, last_answer_at=NOW - dt.timedelta(days=2), now=NOW
    )
    assert not answered.awaiting_answer and not answered.slow
    asked_again = rules.issue_response(
        created_at=opened,
        last_customer_at=NOW - dt.timedelta(hours=5),
        last_answer_at=NOW - dt.timedelta(days=2),
        now=NOW,
    )
    assert asked_again.awaiting_answer and not asked_again.slow


def test_below_alignment_threshold_only_when_the_customer_downgrades_or_churns():
    """tam-account-engagement.md, Disengaging with a customer: "A customer downgrades or
    churns and is below the TAM alignment threshold". Below the threshold alone is no
    reason to disengage."""
    assert rules.below_alignment_threshold(arr=40_000, threshold=50_000, downgrades_or_churns=True)
    assert not rules.below_alignment_threshold(
        arr=40_000, threshold=50_000, downgrades_or_churns=False
    )
    assert not rules.below_alignment_threshold(
        arr=50_000, threshold=50_000, downgrades_or_churns=True
    )
    assert not rules.below_alignment_threshold(arr=1, threshold=None, downgrades_or_churns=True)


def test_rules_import_nothing_from_django():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(rules.__file__).read_text())
    imported = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    ]
    assert imported and not [m for m in imported if m.split(".")[0] in ("django", "engagement")]
