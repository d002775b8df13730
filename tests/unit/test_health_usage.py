"""Health signals read from product usage (issue 16): pure, no database."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from triage import health
from triage.health import Signals, UsageMeasures, UsageThresholds, merge_usage, usage_signals

NOV, OCT = dt.date(2026, 11, 1), dt.date(2026, 10, 1)
T = UsageThresholds()


def _m(**kw) -> UsageMeasures:
    base = {"month": NOV, "active_users": 412, "licensed_seats": 1000}
    return UsageMeasures(**{**base, **kw})


def test_low_adoption_quotes_the_figures_and_the_threshold():
    value, evidence = usage_signals(_m(), T)["user_adoption"]
    assert value == "low"
    assert evidence == "412 of 1,000 seats active in Nov (41%) — below 50%"


def test_healthy_adoption_and_the_band_between_says_nothing():
    assert usage_signals(_m(active_users=820), T)["user_adoption"][0] == "healthy"
    assert "user_adoption" not in usage_signals(_m(active_users=600), T)
    assert "user_adoption" not in usage_signals(_m(licensed_seats=None), T)


def test_salesforce_seats_are_named_in_the_evidence():
    evidence = usage_signals(_m(seats_source="Salesforce"), T)["user_adoption"][1]
    assert "(Salesforce seats)" in evidence


def test_adoption_drop_month_over_month_is_amber_above_the_threshold():
    drop = _m(previous_month=OCT, previous_active_users=600, previous_licensed_seats=1000)
    value, evidence = usage_signals(drop, T)["adoption_dropped"]
    assert value is True
    assert evidence == "41% in Nov, down from 60% in Oct (31%) — more than 20%"
    result = health.evaluate(Signals(adoption_dropped=True))
    assert result.colour == "amber" and result.reasons[0].signal == "adoption_dropped"
    small = _m(previous_month=OCT, previous_active_users=450, previous_licensed_seats=1000)
    assert usage_signals(small, T)["adoption_dropped"][0] is False
    looser = UsageThresholds(adoption_drop_above=Fraction(2, 5))
    assert usage_signals(drop, looser)["adoption_dropped"][0] is False


def test_releases_behind_counts_the_majors_released_above_the_version():
    m = _m(version="16.4", released_majors=(15, 16, 17, 18))
    value, evidence = usage_signals(m, T)["major_releases_behind"]
    assert value == 2
    assert evidence == "on 16.4 in Nov; latest major 18 — 2 major releases behind"
    assert (
        usage_signals(_m(version="18.2", released_majors=(17, 18)), T)["major_releases_behind"][0]
        == 0
    )
    assert "major_releases_behind" not in usage_signals(_m(version="18.2"), T)  # no releases
    assert health.major_releases_behind(Signals(major_releases_behind=2))[0] == "amber"


def test_tickets_stages_and_new_features():
    s = usage_signals(_m(tickets_opened=18, stages_in_use=9, new_features_used=0), T)
    assert s["tickets_per_month"] == (18, "18 tickets opened in Nov")
    assert s["full_devops_lifecycle"] == (True, "9 stages in use in Nov — at least 9")
    assert s["uses_new_features"] == (False, "0 new features used in Nov")
    signals, sources = merge_usage({}, s)
    result = health.evaluate(Signals(**signals), sources=sources)
    by_signal = {r.signal: r for r in result.reasons}
    assert by_signal["tickets_per_month"].colour == "amber"
    assert by_signal["tickets_per_month"].source == "usage"
    assert by_signal["full_devops_lifecycle"].colour == "green"
    assert "uses_new_features" not in by_signal  # not using new features is not a risk line


def test_the_tams_answer_wins_and_the_trace_says_so():
    derived = usage_signals(_m(), T)
    values, sources = merge_usage({"user_adoption": "healthy"}, derived)
    assert values["user_adoption"] == "healthy"
    assert sources["user_adoption"] == (
        "tam",
        "usage data: 412 of 1,000 seats active in Nov (41%) — below 50%",
    )
    reason = health.evaluate(Signals(**values), sources=sources).reasons[0]
    assert reason.as_dict() == {
        "signal": "user_adoption",
        "colour": "green",
        "detail": "Healthy user adoption rate",
        "source": "tam",
        "evidence": "usage data: 412 of 1,000 seats active in Nov (41%) — below 50%",
    }


def test_usage_fills_only_what_nobody_answered():
    values, sources = merge_usage(
        {"nps": "negative", "user_adoption": None},
        usage_signals(_m(), T),
        known_source={"nps": "data"},
    )
    assert values["user_adoption"] == "low" and sources["user_adoption"][0] == "usage"
    assert sources["nps"] == ("data", "")


def test_without_sources_the_reasons_keep_their_three_keys():
    reason = health.evaluate(Signals(user_adoption="low")).as_dict()["reasons"][0]
    assert set(reason) == {"signal", "colour", "detail"}


@given(
    active=st.integers(min_value=0, max_value=5000),
    seats=st.integers(min_value=1, max_value=5000),
    more=st.integers(min_value=0, max_value=5000),
)
def test_more_active_users_never_make_adoption_worse(active, seats, more):
    """Monotonic: low < none < healthy as active users grow, seats fixed."""
    rank = {"low": 0, None: 1, "healthy": 2}

    def level(n: int):
        found = usage_signals(_m(active_users=n, licensed_seats=seats), T).get("user_adoption")
        return rank[found[0] if found else None]

    assert level(active) <= level(active + more)
