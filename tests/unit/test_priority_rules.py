"""Every priority rule against the handbook line it implements. No database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from prioritization.rules import (
    FLOWS,
    RULES,
    AccountFacts,
    EmeaFacts,
    ExceptionFacts,
    Params,
    UnknownModel,
    add_months,
    evaluate,
    rule_name,
)

AS_OF = dt.date(2026, 11, 22)
US = Params(model="us_enterprise")
EMEA = Params(model="emea_enterprise")
COM = Params(model="commercial")
FLAT = Params(model="flat_p1")

# A settled US account: TAM-assigned, onboarded long ago, nothing going on.
BASE = AccountFacts(
    as_of=AS_OF,
    tam_assigned=True,
    arr=250_000,
    onboarding_started=dt.date(2025, 1, 10),
    onboarding_completed=dt.date(2025, 3, 1),
)
# A settled Commercial account: objectives captured, 3 stages, mid ARR, not top 30.
COM_BASE = replace(BASE, arr=120_000, arr_rank=80, success_plan="objectives", stages_adopted=3)


def step(decision, rule):
    return next(s for s in decision.trace if s.rule == rule)


def test_registry_has_every_rule_id_the_ui_draws():
    expected = {
        "unmanaged_child", "digital_only", "onboarding_incomplete",
        "uptier_opportunity", "stage_adoption", "infrastructure_change", "churn_risk",
        "onboarding_window", "p1_exception", "p2_exception", "default_p2",
        "emea_org_change", "emea_onboarding", "emea_infrastructure_change",
        "emea_weekly_engagement", "emea_lam_seat_gap", "emea_expansion_play",
        "emea_tam_handover", "commercial_new_customer", "commercial_arr_rank",
        "commercial_no_objectives", "commercial_critical_project",
        "commercial_low_stage_adoption", "commercial_at_risk", "commercial_qualify_up",
        "commercial_key_logo", "commercial_channel", "commercial_negative_nps",
        "commercial_p2_low_arr", "commercial_p2_objectives_and_stages", "flat_p1",
    }  # fmt: skip
    assert expected <= set(RULES)
    for flow in FLOWS.values():
        assert set(flow) <= set(RULES)
    assert all(rule.quote and rule.source for rule in RULES.values())


def test_every_rule_has_a_name_for_people_and_no_number_in_it():
    """Issue 14.13: pages show the rule's name, not "uptier_opportunity"; the name holds for
    every version of the rule set, so it carries none of the thresholds."""
    names = [rule.name for rule in RULES.values()]
    assert all(names) and len(set(names)) == len(names)
    for rule in RULES.values():
        assert rule.name != rule.id and "_" not in rule.name
        assert not any(ch.isdigit() for ch in rule.name.replace("P1", "").replace("P2", ""))
    assert rule_name("default_p2") == "No P1 parameter holds"
    assert rule_name("a_rule_of_an_older_release") == "a_rule_of_an_older_release"


# --- Pre-rules --------------------------------------------------------------------------


@pytest.mark.parametrize("params", [US, EMEA, COM, FLAT])
def test_unmanaged_child_is_p3(params):
    """ "Pr3 is solely for unmanaged child accounts" """
    decision = evaluate(replace(BASE, unmanaged_child=True, churn_risk=True), params)
    assert (decision.priority, decision.decided_by) == (3, "unmanaged_child")
    assert [s.rule for s in decision.trace] == ["unmanaged_child"]


@pytest.mark.parametrize("params", [US, EMEA, COM, FLAT])
def test_digital_only_is_p4(params):
    """ "Pr4 is only for our digital customers and not for the TAM-assigned segment" """
    decision = evaluate(replace(BASE, digital_only=True, tam_assigned=False), params)
    assert (decision.priority, decision.decided_by) == (4, "digital_only")


@pytest.mark.parametrize("params", [US, EMEA, COM, FLAT])
def test_a_tam_assigned_digital_only_account_is_not_p4(params):
    """ "Pr4 is only for our digital customers and not for the TAM-assigned segment" """
    decision = evaluate(replace(BASE, digital_only=True), params)
    assert decision.priority in (1, 2)
    digital = step(decision, "digital_only")
    assert digital.answer is False
    assert digital.question == "Digital-only customer without a TAM?"
    assert digital.evidence == (
        "digital-only, but TAM-assigned: Pr4 is not for the TAM-assigned segment"
    )


def test_public_sector_trial_puts_a_tam_assigned_digital_customer_in_p4():
    """ "... not for the TAM-assigned segment, with the exception of the Public Sector that is
    trialing a TAM-assigned digital customer" (reading: the exception is to "not for the
    TAM-assigned segment", docs/rules.md)"""
    trial = replace(US, digital_tam_trial=True)
    decision = evaluate(replace(BASE, digital_only=True), trial)
    assert (decision.priority, decision.decided_by) == (4, "digital_only")
    assert step(decision, "digital_only").question.startswith(
        "Digital-only customer (TAM-assigned ones too"
    )
    assert evaluate(replace(BASE, digital_only=True, tam_assigned=False), trial).priority == 4
    assert evaluate(BASE, trial).priority == 2  # the trial touches digital customers only


@pytest.mark.parametrize("params", [US, EMEA, COM])
def test_onboarding_not_complete_is_p1(params):
    """ "A new TAM-assigned customer coming on to GitLab will default to Pr1 until their
    onboarding enablement is complete." """
    facts = replace(BASE, onboarding_started=dt.date(2026, 6, 1), onboarding_completed=None)
    decision = evaluate(facts, params)
    assert (decision.priority, decision.decided_by) == (1, "onboarding_incomplete")
    assert step(decision, "onboarding_incomplete").evidence == (
        "onboarding started 2026-06-01 (174 days ago), not complete"
    )
    # A completion date after as_of: still onboarding on that day.
    assert evaluate(replace(facts, onboarding_completed=dt.date(2026, 12, 1)), params).priority == 1
    # Not TAM-assigned: the pre-rule does not apply.
    unassigned = evaluate(replace(facts, tam_assigned=False), params)
    assert unassigned.decided_by != "onboarding_incomplete"


def test_onboarding_max_days_parameter_releases_a_stale_onboarding():
    facts = replace(BASE, onboarding_started=dt.date(2026, 1, 1), onboarding_completed=None)
    assert evaluate(facts, US).priority == 1
    decision = evaluate(facts, replace(US, onboarding_max_days=180))
    assert (decision.priority, decision.decided_by) == (2, "default_p2")
    assert "past the 180-day limit" in step(decision, "onboarding_incomplete").evidence


# --- US Enterprise ----------------------------------------------------------------------


def test_us_default_is_p2_and_asks_the_flowchart_in_order():
    """ "p1exception-- No -->p2" """
    decision = evaluate(BASE, US)
    assert (decision.priority, decision.decided_by) == (2, "default_p2")
    assert [s.rule for s in decision.trace] == [
        "unmanaged_child", "digital_only", "onboarding_incomplete", "uptier_opportunity",
        "stage_adoption", "infrastructure_change", "churn_risk", "onboarding_window",
        "p1_exception", "default_p2",
    ]  # fmt: skip


def test_uptier_closing_within_six_months_is_p1_with_the_design_evidence():
    """ "Open up-tier opp closing in next 6 months -- Yes --> p1" """
    decision = evaluate(replace(BASE, uptier_opportunity_close_date=dt.date(2027, 1, 15)), US)
    assert (decision.priority, decision.decided_by) == (1, "uptier_opportunity")
    s = step(decision, "uptier_opportunity")
    assert s.question == "Open up-tier opportunity closing in the next 6 months?"
    assert (s.answer, s.evidence) == (True, "closes 2027-01-15 (54 days)")


@pytest.mark.parametrize(
    ("close", "priority"),
    [
        (dt.date(2027, 5, 22), 1),  # exactly 6 months
        (dt.date(2027, 5, 23), 2),  # one day later
        (dt.date(2026, 10, 1), 1),  # open past its close date
    ],
)
def test_uptier_window_edges(close, priority):
    decision = evaluate(replace(BASE, uptier_opportunity_close_date=close), US)
    assert decision.priority == priority


def test_uptier_window_is_a_parameter():
    facts = replace(BASE, uptier_opportunity_close_date=dt.date(2027, 7, 1))
    assert evaluate(facts, US).priority == 2
    decision = evaluate(facts, replace(US, uptier_window_months=9))
    assert decision.priority == 1
    assert step(decision, "uptier_opportunity").question.endswith("next 9 months?")


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("stage_adoption_hours_per_week", "stage_adoption"),
        ("infrastructure_change_hours_per_week", "infrastructure_change"),
    ],
)
def test_more_than_two_hours_a_week_is_p1(field, rule):
    """ "Stage adoption this quarter requiring >2hrs TAM time per week" / "Infra change this
    quarter requiring >2hrs TAM time per week" """
    assert evaluate(replace(BASE, **{field: 2.0}), US).priority == 2
    decision = evaluate(replace(BASE, **{field: 2.5}), US)
    assert (decision.priority, decision.decided_by) == (1, rule)
    assert step(decision, rule).evidence == "2.5 h/week of TAM time (threshold > 2 h)"


def test_churn_risk_is_p1():
    """ "At risk of contraction or churn -- Yes --> p1" """
    decision = evaluate(replace(BASE, churn_risk=True, health="red"), US)
    assert (decision.priority, decision.decided_by) == (1, "churn_risk")
    assert step(decision, "churn_risk").evidence == "flagged at risk by the TAM; health red"


def test_first_45_days_of_onboarding_is_p1():
    """ "First 30-45 days of onboarding -- Yes --> p1" (window a parameter, default 45)"""
    facts = replace(
        BASE, onboarding_started=dt.date(2026, 10, 20), onboarding_completed=dt.date(2026, 11, 1)
    )
    decision = evaluate(facts, US)
    assert (decision.priority, decision.decided_by) == (1, "onboarding_window")
    assert evaluate(facts, replace(US, onboarding_window_days=30)).priority == 2


def test_approved_p1_exception_lifts_a_p2_and_a_pending_one_does_not():
    """ "P1 exception* -- Yes --> p1" """
    approved = evaluate(replace(BASE, exception=ExceptionFacts(1, approved=True)), US)
    assert (approved.priority, approved.decided_by) == (1, "p1_exception")
    pending = evaluate(replace(BASE, exception=ExceptionFacts(1, approved=False)), US)
    assert pending.priority == 2
    assert "not approved" in step(pending, "p1_exception").evidence


def test_approved_p2_exception_turns_a_p1_into_p2():
    """ "p1-.->p2exception; p2exception -- Yes --> p2" """
    facts = replace(BASE, churn_risk=True, exception=ExceptionFacts(2, approved=True))
    decision = evaluate(facts, US)
    assert (decision.priority, decision.decided_by) == (2, "p2_exception")
    assert [s.rule for s in decision.trace][-2:] == ["churn_risk", "p2_exception"]


# --- EMEA Enterprise --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("org_change", "emea_org_change"),
        ("onboarding", "emea_onboarding"),
        ("infrastructure_change", "emea_infrastructure_change"),
        ("weekly_engagement_requested", "emea_weekly_engagement"),
        ("lam_seat_gap", "emea_lam_seat_gap"),
        ("expansion_play", "emea_expansion_play"),
        ("tam_handover", "emea_tam_handover"),
    ],
)
def test_any_emea_parameter_makes_p1(field, rule):
    """ "Following parameters and metrics define the prioritization" - P1 when any holds."""
    decision = evaluate(replace(BASE, emea=EmeaFacts(**{field: True})), EMEA)
    assert (decision.priority, decision.decided_by) == (1, rule)
    # Every parameter is asked, so the trace shows all seven.
    assert sum(1 for s in decision.trace if s.rule.startswith("emea_")) == 7


def test_emea_without_parameters_is_p2_and_an_approved_proposal_wins():
    """ "TAM to propose a priority ... Review during weekly 1:1s with the TAM Manager" """
    assert evaluate(BASE, EMEA).decided_by == "emea_default_p2"
    up = evaluate(replace(BASE, exception=ExceptionFacts(1, approved=True)), EMEA)
    assert (up.priority, up.decided_by) == (1, "p1_exception")
    down = replace(BASE, emea=EmeaFacts(org_change=True), exception=ExceptionFacts(2, True))
    assert evaluate(down, EMEA).priority == 2


# --- Commercial -------------------------------------------------------------------------


def test_commercial_settled_account_is_p2_by_objectives_and_stages():
    """ "Success Planning: Objectives only ... Stages adopted: 3 or more" -> P2"""
    decision = evaluate(COM_BASE, COM)
    assert (decision.priority, decision.decided_by) == (2, "commercial_p2_objectives_and_stages")


def test_new_commercial_customer_is_p1():
    """ "All new Commercial customers default to Priority 1 to start their engagement." """
    facts = replace(
        COM_BASE, onboarding_started=dt.date(2026, 10, 1), onboarding_completed=dt.date(2026, 11, 1)
    )
    decision = evaluate(facts, COM)
    assert (decision.priority, decision.decided_by) == (1, "commercial_new_customer")


def test_top_30_by_arr_stays_p1_even_with_objectives_and_five_stages():
    """ "an account could have clear objectives and be using 5 stages, but if are a top 30
    ARR account they remain priority 1" """
    facts = replace(COM_BASE, arr_rank=30, stages_adopted=5, success_plan="full")
    decision = evaluate(facts, COM)
    assert (decision.priority, decision.decided_by) == (1, "commercial_arr_rank")
    assert step(decision, "commercial_arr_rank").evidence == "rank 30 by ARR (120,000 USD)"
    assert evaluate(replace(facts, arr_rank=31), COM).priority == 2
    assert evaluate(replace(facts, arr_rank=31), replace(COM, commercial_top_n=40)).priority == 1


def test_small_account_is_p1_only_until_objectives_are_captured():
    """ "For smaller accounts with low upside, or low stage adoption, we will mark them
    Priority 1 only until we have captured Objectives" """
    small = replace(COM_BASE, arr=40_000, stages_adopted=1, success_plan="none")
    assert evaluate(small, COM).decided_by == "commercial_no_objectives"
    captured = evaluate(replace(small, success_plan="objectives"), COM)
    assert (captured.priority, captured.decided_by) == (2, "commercial_p2_low_arr")


def test_low_stage_adoption_keeps_a_larger_account_p1():
    """ "Stages adopted: Not already using 2-3 stages" -> P1"""
    decision = evaluate(replace(COM_BASE, stages_adopted=2), COM)
    assert (decision.priority, decision.decided_by) == (1, "commercial_low_stage_adoption")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"critical_project": True}, "commercial_critical_project"),
        ({"health": "amber"}, "commercial_at_risk"),
        ({"in_triage": True}, "commercial_at_risk"),
        ({"churn_risk": True}, "commercial_at_risk"),
        ({"uptier_opportunity_close_date": dt.date(2027, 8, 1)}, "commercial_qualify_up"),
        ({"key_logo": True}, "commercial_key_logo"),
        ({"channel_engagement": True}, "commercial_channel"),
        ({"nps": -10}, "commercial_negative_nps"),
    ],
)
def test_commercial_p1_criteria_and_qualify_up(change, rule):
    """ "Success Planning: ... includes a critical project" / "Account at-risk or in triage"
    / "Uptier opportunity identified w/ timeline (prefer 9 months or less)" / "Key logo or
    case study agreement" / "Possible channel engagement ..." / "(including negative NPS)" """
    # Even a small account (<75k) qualifies up.
    decision = evaluate(replace(COM_BASE, arr=30_000, **change), COM)
    assert (decision.priority, decision.decided_by) == (1, rule)


def test_commercial_uptier_beyond_nine_months_does_not_qualify_up():
    facts = replace(COM_BASE, uptier_opportunity_close_date=dt.date(2027, 9, 1))
    assert evaluate(facts, COM).priority == 2


def test_commercial_health_yellow_and_zero_nps_are_not_risk():
    assert evaluate(replace(COM_BASE, health="yellow", nps=0), COM).priority == 2


def test_commercial_exceptions():
    up = evaluate(replace(COM_BASE, exception=ExceptionFacts(1, True)), COM)
    assert (up.priority, up.decided_by) == (1, "p1_exception")
    down = evaluate(replace(COM_BASE, key_logo=True, exception=ExceptionFacts(2, True)), COM)
    assert (down.priority, down.decided_by) == (2, "p2_exception")


# --- Flat and the engine ----------------------------------------------------------------


def test_flat_p1_makes_every_tam_assigned_account_p1():
    """ "All AMER CSM customers are Priority 1." """
    assert evaluate(BASE, FLAT).priority == 1
    assert evaluate(replace(BASE, tam_assigned=False), FLAT).priority == 2


def test_the_model_of_the_facts_wins_over_the_params():
    decision = evaluate(replace(BASE, model="flat_p1"), US)
    assert (decision.model, decision.priority) == ("flat_p1", 1)


def test_unknown_model_raises():
    with pytest.raises(UnknownModel):
        evaluate(replace(BASE, model="nope"), US)


def test_add_months_clamps_to_month_end():
    assert add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2026, 11, 22), 14) == dt.date(2028, 1, 22)


def test_the_rules_import_nothing_from_django():
    import subprocess
    import sys

    code = (
        "import sys, prioritization.rules; "
        "sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
