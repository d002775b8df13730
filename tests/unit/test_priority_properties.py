"""Hypothesis properties of the priority rules (STYLE.md rule 15). No database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from prioritization.rules import (
    HEALTH_COLOURS,
    MODELS,
    RULES,
    SUCCESS_PLANS,
    AccountFacts,
    EmeaFacts,
    ExceptionFacts,
    Params,
    evaluate,
)

AS_OF = dt.date(2026, 11, 22)
dates = st.one_of(
    st.none(), st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2028, 12, 31))
)
hours = st.floats(min_value=0, max_value=40, allow_nan=False)

facts_strategy = st.builds(
    AccountFacts,
    as_of=st.just(AS_OF),
    model=st.none(),
    arr=st.floats(min_value=0, max_value=5_000_000, allow_nan=False),
    arr_rank=st.one_of(st.none(), st.integers(min_value=1, max_value=500)),
    tam_assigned=st.booleans(),
    unmanaged_child=st.booleans(),
    digital_only=st.booleans(),
    onboarding_started=dates,
    onboarding_completed=dates,
    uptier_opportunity_close_date=dates,
    stage_adoption_hours_per_week=hours,
    infrastructure_change_hours_per_week=hours,
    churn_risk=st.booleans(),
    health=st.one_of(st.none(), st.sampled_from(HEALTH_COLOURS)),
    in_triage=st.booleans(),
    success_plan=st.sampled_from(SUCCESS_PLANS),
    critical_project=st.booleans(),
    stages_adopted=st.integers(min_value=0, max_value=10),
    key_logo=st.booleans(),
    channel_engagement=st.booleans(),
    nps=st.one_of(st.none(), st.integers(min_value=-100, max_value=100)),
    emea=st.builds(EmeaFacts),
    exception=st.one_of(st.none(), st.builds(ExceptionFacts, priority=st.sampled_from([1, 2]))),
)
params_strategy = st.builds(
    Params,
    model=st.sampled_from(MODELS),
    onboarding_max_days=st.integers(min_value=0, max_value=400),
    digital_tam_trial=st.booleans(),
    uptier_window_months=st.integers(min_value=1, max_value=24),
    stage_adoption_hours=st.floats(min_value=0, max_value=10, allow_nan=False),
    infrastructure_change_hours=st.floats(min_value=0, max_value=10, allow_nan=False),
    onboarding_window_days=st.integers(min_value=0, max_value=120),
    commercial_top_n=st.integers(min_value=0, max_value=100),
)


@settings(max_examples=300)
@given(facts_strategy, params_strategy)
def test_deterministic_and_well_formed(facts, params):
    first, second = evaluate(facts, params), evaluate(facts, params)
    assert first == second
    assert first.priority in (1, 2, 3, 4)
    assert first.decided_by in RULES
    assert first.trace and all(step.rule in RULES for step in first.trace)
    # The deciding rule was asked, and the last "yes" (or the default) is the one that decided.
    assert first.decided_by in {step.rule for step in first.trace}


@settings(max_examples=300)
@given(facts_strategy, params_strategy)
def test_p3_and_p4_only_for_child_or_digital_accounts(facts, params):
    decision = evaluate(facts, params)
    if decision.priority == 3:
        assert facts.unmanaged_child
    if decision.priority == 4:
        assert facts.digital_only
    if not (facts.unmanaged_child or facts.digital_only):
        assert decision.priority in (1, 2)


@settings(max_examples=300)
@given(
    facts_strategy,
    params_strategy,
    st.integers(min_value=0, max_value=400),
    st.floats(min_value=0, max_value=20, allow_nan=False),
    st.floats(min_value=0, max_value=20, allow_nan=False),
)
def test_more_risk_never_lowers_the_priority(facts, params, earlier_days, more_stage, more_infra):
    """Adding churn risk, an earlier up-tier, more hours: the priority number never grows."""
    base = evaluate(facts, params).priority
    close = facts.uptier_opportunity_close_date
    earlier = (close or AS_OF + dt.timedelta(days=3000)) - dt.timedelta(days=earlier_days)
    riskier = [
        replace(facts, churn_risk=True),
        replace(facts, uptier_opportunity_close_date=earlier),
        replace(
            facts, stage_adoption_hours_per_week=facts.stage_adoption_hours_per_week + more_stage
        ),
        replace(
            facts,
            infrastructure_change_hours_per_week=facts.infrastructure_change_hours_per_week
            + more_infra,
        ),
        replace(facts, in_triage=True),
        replace(facts, emea=replace(facts.emea, org_change=True)),
    ]
    for more in riskier:
        assert evaluate(more, params).priority <= base


@settings(max_examples=200)
@given(facts_strategy, params_strategy)
def test_an_approved_p1_exception_never_lowers_and_p2_never_raises(facts, params):
    plain = evaluate(replace(facts, exception=None), params).priority
    up = evaluate(replace(facts, exception=ExceptionFacts(1, approved=True)), params).priority
    down = evaluate(replace(facts, exception=ExceptionFacts(2, approved=True)), params).priority
    assert up <= plain
    assert down >= plain or plain in (3, 4)
