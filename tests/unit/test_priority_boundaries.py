"""Properties of every rule-set parameter (issue 14, STYLE.md rule 15). No database.

For each parameter: moving its boundary by one unit (the smallest step an admin can enter:
1 day, 1 month, 1 rank, 1 stage, 0.1 h, 0.01 USD; a switch is flipped) changes the
answers of exactly the accounts on that boundary, and only where the flow reaches the
parameter's question; a parameter a model does not read (`MODEL_PARAMS`) changes none of
its answers. "Answers" are the (rule, answer) path of the trace and the decision: the
question's wording and the evidence carry the number, so they change with it by design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prioritization.rules import (
    HEALTH_COLOURS,
    MODEL_PARAMS,
    MODELS,
    SUCCESS_PLANS,
    AccountFacts,
    EmeaFacts,
    ExceptionFacts,
    Params,
    add_months,
    evaluate,
)

AS_OF = dt.date(2026, 11, 22)


def answers(facts: AccountFacts, params: Params) -> tuple:
    decision = evaluate(facts, params)
    path = tuple((step.rule, step.answer) for step in decision.trace)
    return decision.priority, decision.decided_by, path


def asked(facts: AccountFacts, params: Params, rule: str) -> bool:
    return any(step.rule == rule for step in evaluate(facts, params).trace)


def ago(days: int) -> dt.date:
    return AS_OF - dt.timedelta(days=days)


@dataclass(frozen=True)
class Boundary:
    """One parameter: which models read it, the rule whose answer it moves, how to draw a
    value and move it by one unit, where to put an account near the boundary (offset 0 =
    on it), and whether an account is on it."""

    param: str
    models: tuple[str, ...]
    rule: str
    value: st.SearchStrategy
    step: Callable[[object], object]
    place: Callable[[AccountFacts, Params, int], AccountFacts]
    on_boundary: Callable[[AccountFacts, Params, Params], bool]


def _onboarding_started(facts, params, offset, limit):
    return replace(facts, onboarding_started=ago(limit + offset), onboarding_completed=None)


def _uptier(facts, months, offset):
    # Offsets in days around the last day of the one-month band the step adds.
    return replace(
        facts, uptier_opportunity_close_date=add_months(AS_OF, months + 1) + dt.timedelta(offset)
    )


def _in_band(close, months):
    return close is not None and add_months(AS_OF, months) < close <= add_months(AS_OF, months + 1)


TENTHS = st.integers(min_value=0, max_value=100).map(lambda n: n / 10)
BOUNDARIES = (
    Boundary(
        "onboarding_max_days",
        MODELS,
        "onboarding_incomplete",
        st.integers(min_value=1, max_value=400),  # 0 is "no limit", a switch, not a bound
        lambda m: m + 1,
        lambda f, p, o: _onboarding_started(f, p, o, p.onboarding_max_days + 1),
        lambda f, p, q: (
            f.tam_assigned
            and (f.onboarding_completed is None or f.onboarding_completed > AS_OF)
            and f.onboarding_started == ago(q.onboarding_max_days)
        ),
    ),
    Boundary(
        "digital_tam_trial",
        MODELS,
        "digital_only",
        st.booleans(),
        lambda on: not on,
        lambda f, p, o: replace(f, digital_only=o >= 0, tam_assigned=o <= 0),
        lambda f, p, q: f.digital_only and f.tam_assigned,
    ),
    Boundary(
        "uptier_window_months",
        ("us_enterprise",),
        "uptier_opportunity",
        st.integers(min_value=1, max_value=24),
        lambda m: m + 1,
        lambda f, p, o: _uptier(f, p.uptier_window_months, o),
        lambda f, p, q: _in_band(f.uptier_opportunity_close_date, p.uptier_window_months),
    ),
    Boundary(
        "stage_adoption_hours",
        ("us_enterprise",),
        "stage_adoption",
        TENTHS,
        lambda h: round(h + 0.1, 1),
        lambda f, p, o: replace(
            f,
            stage_adoption_hours_per_week=max(0.0, round(p.stage_adoption_hours + (o + 1) / 10, 1)),
        ),
        lambda f, p, q: (
            p.stage_adoption_hours < f.stage_adoption_hours_per_week <= q.stage_adoption_hours
        ),
    ),
    Boundary(
        "infrastructure_change_hours",
        ("us_enterprise",),
        "infrastructure_change",
        TENTHS,
        lambda h: round(h + 0.1, 1),
        lambda f, p, o: replace(
            f,
            infrastructure_change_hours_per_week=max(
                0.0, round(p.infrastructure_change_hours + (o + 1) / 10, 1)
            ),
        ),
        lambda f, p, q: (
            p.infrastructure_change_hours
            < f.infrastructure_change_hours_per_week
            <= q.infrastructure_change_hours
        ),
    ),
    Boundary(
        "onboarding_window_days",
        ("us_enterprise",),
        "onboarding_window",
        st.integers(min_value=0, max_value=120),
        lambda d: d + 1,
        lambda f, p, o: replace(f, onboarding_started=ago(max(0, p.onboarding_window_days + o))),
        lambda f, p, q: (
            f.onboarding_started is not None
            and f.onboarding_started <= AS_OF
            and (AS_OF - f.onboarding_started).days == p.onboarding_window_days
        ),
    ),
    Boundary(
        "commercial_new_customer_days",
        ("commercial",),
        "commercial_new_customer",
        st.integers(min_value=0, max_value=200),
        lambda d: d + 1,
        lambda f, p, o: replace(
            f, onboarding_started=ago(max(0, p.commercial_new_customer_days + o))
        ),
        lambda f, p, q: (
            f.onboarding_started is not None
            and f.onboarding_started <= AS_OF
            and (AS_OF - f.onboarding_started).days == p.commercial_new_customer_days
        ),
    ),
    Boundary(
        "commercial_top_n",
        ("commercial",),
        "commercial_arr_rank",
        st.integers(min_value=0, max_value=100),
        lambda n: n + 1,
        lambda f, p, o: replace(f, arr_rank=max(1, p.commercial_top_n + 1 + o)),
        lambda f, p, q: f.arr_rank == q.commercial_top_n,
    ),
    Boundary(
        "commercial_p2_arr_below",
        ("commercial",),
        "commercial_p2_low_arr",
        st.integers(min_value=0, max_value=20_000_000).map(lambda cents: cents / 100),
        lambda usd: round(usd + 0.01, 2),
        lambda f, p, o: replace(f, arr=max(0.0, round(p.commercial_p2_arr_below + o / 100, 2))),
        lambda f, p, q: p.commercial_p2_arr_below <= f.arr < q.commercial_p2_arr_below,
    ),
    Boundary(
        "commercial_min_stages",
        ("commercial",),
        "commercial_p2_objectives_and_stages",
        st.integers(min_value=0, max_value=10),
        lambda n: n + 1,
        lambda f, p, o: replace(f, stages_adopted=max(0, p.commercial_min_stages + o)),
        lambda f, p, q: f.stages_adopted == p.commercial_min_stages,
    ),
    Boundary(
        "commercial_uptier_window_months",
        ("commercial",),
        "commercial_qualify_up",
        st.integers(min_value=1, max_value=24),
        lambda m: m + 1,
        lambda f, p, o: _uptier(f, p.commercial_uptier_window_months, o),
        lambda f, p, q: _in_band(
            f.uptier_opportunity_close_date, p.commercial_uptier_window_months
        ),
    ),
)
BY_PARAM = {b.param: b for b in BOUNDARIES}

# Mostly quiet accounts, so the flows reach the later questions often.
rarely = st.sampled_from([False, False, False, True])
dates = st.one_of(
    st.none(), st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2028, 12, 31))
)
facts_strategy = st.builds(
    AccountFacts,
    as_of=st.just(AS_OF),
    arr=st.floats(min_value=0, max_value=5_000_000, allow_nan=False),
    arr_rank=st.one_of(st.none(), st.integers(min_value=1, max_value=200)),
    tam_assigned=st.sampled_from([True, True, True, False]),
    unmanaged_child=rarely,
    digital_only=rarely,
    onboarding_started=dates,
    onboarding_completed=dates,
    uptier_opportunity_close_date=dates,
    stage_adoption_hours_per_week=st.floats(min_value=0, max_value=12, allow_nan=False),
    infrastructure_change_hours_per_week=st.floats(min_value=0, max_value=12, allow_nan=False),
    churn_risk=rarely,
    health=st.one_of(st.none(), st.sampled_from(HEALTH_COLOURS)),
    in_triage=rarely,
    success_plan=st.sampled_from(SUCCESS_PLANS),
    critical_project=rarely,
    stages_adopted=st.integers(min_value=0, max_value=10),
    key_logo=rarely,
    channel_engagement=rarely,
    nps=st.one_of(st.none(), st.integers(min_value=-100, max_value=100)),
    emea=st.builds(EmeaFacts, org_change=rarely, tam_handover=rarely),
    exception=st.one_of(
        st.none(), st.builds(ExceptionFacts, priority=st.sampled_from([1, 2]), approved=rarely)
    ),
)


@st.composite
def params_strategy(draw, model: str) -> Params:
    values = {b.param: draw(b.value) for b in BOUNDARIES}
    return Params(model=model, **values)


def test_every_parameter_has_a_boundary_and_belongs_to_its_models():
    """Every field an admin can edit on a rule set is covered here, and MODEL_PARAMS (what
    the admin shows per model) is what these boundaries say each model reads."""
    editable = {f.name for f in fields(Params)} - {"model"}
    assert set(BY_PARAM) == editable
    for model in MODELS:
        assert set(MODEL_PARAMS[model]) == {b.param for b in BOUNDARIES if model in b.models}


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda b: b.param)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_a_one_unit_move_changes_exactly_the_accounts_on_the_boundary(boundary, data):
    model = data.draw(st.sampled_from(boundary.models))
    params = data.draw(params_strategy(model))
    facts = data.draw(facts_strategy)
    if data.draw(st.booleans()):  # half the examples sit near the boundary
        facts = boundary.place(facts, params, data.draw(st.integers(min_value=-2, max_value=2)))
    moved = replace(params, **{boundary.param: boundary.step(getattr(params, boundary.param))})
    changed = answers(facts, params) != answers(facts, moved)
    reached = asked(facts, params, boundary.rule)
    assert changed == (reached and boundary.on_boundary(facts, params, moved))


@pytest.mark.parametrize(
    "boundary", [b for b in BOUNDARIES if set(b.models) != set(MODELS)], ids=lambda b: b.param
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_parameter_outside_the_model_changes_none_of_its_answers(boundary, data):
    """What the admin hides on a rule set (issue 14.12) is what its model never reads."""
    model = data.draw(st.sampled_from([m for m in MODELS if m not in boundary.models]))
    params = data.draw(params_strategy(model))
    facts = boundary.place(
        data.draw(facts_strategy), params, data.draw(st.integers(min_value=-2, max_value=2))
    )
    other = replace(params, **{boundary.param: data.draw(boundary.value)})
    assert answers(facts, params) == answers(facts, other)


# A quiet account each flow takes down to the parameter's question, put on the boundary:
# the property above is not vacuous.
QUIET = AccountFacts(
    as_of=AS_OF,
    tam_assigned=True,
    arr=120_000,
    arr_rank=80,
    success_plan="objectives",
    stages_adopted=3,
    onboarding_started=dt.date(2025, 1, 10),
    onboarding_completed=dt.date(2025, 3, 1),
)


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda b: b.param)
def test_an_account_on_each_boundary_moves(boundary):
    params = Params(model=boundary.models[0])
    if boundary.param == "onboarding_max_days":
        params = replace(params, onboarding_max_days=180)
    facts = boundary.place(QUIET, params, 0)
    moved = replace(params, **{boundary.param: boundary.step(getattr(params, boundary.param))})
    assert asked(facts, params, boundary.rule)
    assert boundary.on_boundary(facts, params, moved)
    assert answers(facts, params) != answers(facts, moved)
