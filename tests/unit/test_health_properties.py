"""Properties of the health rules (STYLE.md rule 15): determinism, a red signal makes red,
adding a green signal never lowers the colour, adding a risk signal never raises it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from triage import health
from triage.health import COLOURS, POINTS, Signals, evaluate

maybe_bool = st.none() | st.booleans()
maybe_count = st.none() | st.integers(min_value=0, max_value=40)


def maybe(values):
    return st.none() | st.sampled_from(values)


signals_strategy = st.builds(
    Signals,
    downgrading_or_cancelling=maybe_bool,
    no_communication=maybe_bool,
    no_executive_sponsor_access=maybe_bool,
    user_adoption=maybe(health.USER_ADOPTION),
    lack_of_response=maybe_bool,
    complaints=maybe_bool,
    champion_lost=maybe_bool,
    use_cases=maybe(health.USE_CASES),
    success_defined=maybe_bool,
    major_releases_behind=maybe_count,
    cadence_attendance=maybe(health.CADENCE_ATTENDANCE),
    tickets_per_month=maybe_count,
    contributes_to_issues=maybe_bool,
    acquired_by_competitor_user=maybe_bool,
    nps=maybe(health.NPS),
    little_usage_info=maybe_bool,
    missing_key_contacts=maybe_bool,
    stakeholders=maybe_count,
    full_devops_lifecycle=maybe_bool,
    regular_communication=maybe_bool,
    uses_new_features=maybe_bool,
    ebrs_last_12_months=maybe_count,
    interested_in_upgrading=maybe_bool,
    regular_feedback=maybe_bool,
    onboarding=maybe_bool,
)
RED_SIGNALS = ("downgrading_or_cancelling", "no_communication", "no_executive_sponsor_access")
# Green-only yes/no signals: setting one can only add a green reason.
GREEN_FLAGS = (
    "full_devops_lifecycle",
    "regular_communication",
    "uses_new_features",
    "interested_in_upgrading",
    "regular_feedback",
)
AMBER_FLAGS = ("lack_of_response", "complaints", "champion_lost", "acquired_by_competitor_user")


def rank(colour: str | None) -> int:
    return -1 if colour is None else POINTS[colour]


@given(signals_strategy)
def test_deterministic(signals):
    assert evaluate(signals) == evaluate(signals)


@given(signals_strategy, st.sampled_from(RED_SIGNALS))
def test_adding_a_red_signal_makes_red(signals, name):
    assert evaluate(replace(signals, **{name: True})).colour == "red"


@given(signals_strategy, st.sampled_from(GREEN_FLAGS))
def test_adding_a_green_signal_never_lowers_the_colour(signals, name):
    before = evaluate(replace(signals, **{name: None}))
    after = evaluate(replace(signals, **{name: True}))
    assert after.colour is not None
    if before.colour is not None:
        assert rank(after.colour) >= rank(before.colour)


@given(signals_strategy, st.sampled_from(AMBER_FLAGS))
def test_adding_an_amber_signal_never_raises_the_colour(signals, name):
    before = evaluate(replace(signals, **{name: None}))
    after = evaluate(replace(signals, **{name: True}))
    if before.colour is not None:
        assert rank(after.colour) <= rank(before.colour)


@given(signals_strategy)
def test_colour_is_red_iff_a_red_reason_or_mean_rounds_to_red(signals):
    result = evaluate(signals)
    assert result.colour in (*COLOURS, None)
    if result.reasons:
        has_red = any(r.colour == "red" for r in result.reasons)
        if has_red:
            assert result.colour == "red"
        else:
            assert abs(POINTS[result.colour] - result.score) <= 0.5 + 1e-9
