"""Every criterion of handbook/tam-account-triage.md's health lists, and both worked
examples. Pure: no database."""

from __future__ import annotations

import datetime as dt

import pytest

from triage import health
from triage.health import AMBER, GREEN, RED, YELLOW, Signals, evaluate
from triage.labels import (
    fiscal_quarter,
    fiscal_quarter_bounds,
    issue_body,
    issue_labels,
    marker,
    marker_id,
    read_labels,
)


def only(**kwargs) -> health.HealthResult:
    return evaluate(Signals(**kwargs))


# (signals, expected signal name, expected colour, a phrase of the handbook line)
CRITERIA = [
    # Red
    (
        {"downgrading_or_cancelling": True},
        "downgrading_or_cancelling",
        RED,
        "downgrading/cancelling",
    ),
    ({"no_communication": True}, "no_communication", RED, "No communication"),
    (
        {"no_executive_sponsor_access": True},
        "no_executive_sponsor_access",
        RED,
        "executive sponsors",
    ),
    # Amber
    ({"user_adoption": "low"}, "user_adoption", AMBER, "Low user adoption"),
    ({"lack_of_response": True}, "lack_of_response", AMBER, "Lack of response"),
    ({"complaints": True}, "complaints", AMBER, "Complains about the company"),
    ({"champion_lost": True}, "champion_lost", AMBER, "Loss of our GitLab champion"),
    ({"use_cases": "not_achieved"}, "use_cases", AMBER, "use-cases not achieved"),
    ({"success_defined": False}, "success_defined", AMBER, "what success looks like"),
    ({"major_releases_behind": 2}, "major_releases_behind", AMBER, "two major releases"),
    ({"major_releases_behind": 5}, "major_releases_behind", AMBER, "two major releases"),
    ({"cadence_attendance": "often_absent"}, "cadence_attendance", AMBER, "Frequently"),
    ({"tickets_per_month": 16}, "tickets_per_month", AMBER, "more than 15 tickets"),
    ({"acquired_by_competitor_user": True}, "acquired_by_competitor_user", AMBER, "competitor"),
    ({"nps": "negative"}, "nps", AMBER, "Negative NPS"),
    # Yellow
    ({"little_usage_info": True}, "little_usage_info", YELLOW, "much info"),
    ({"missing_key_contacts": True}, "missing_key_contacts", YELLOW, "right contacts"),
    ({"use_cases": "not_defined"}, "use_cases", YELLOW, "clearly defined"),
    ({"stakeholders": 1}, "stakeholders", YELLOW, "Only one primary stakeholder"),
    ({"major_releases_behind": 1}, "major_releases_behind", YELLOW, "one major release"),
    (
        {"tickets_per_month": 0, "contributes_to_issues": False},
        "tickets_per_month",
        YELLOW,
        "Doesn't raise any tickets",
    ),
    ({"cadence_attendance": "sometimes_late"}, "cadence_attendance", YELLOW, "Occasionally"),
    ({"tickets_per_month": 11}, "tickets_per_month", YELLOW, "more than 10 tickets"),
    ({"tickets_per_month": 15}, "tickets_per_month", YELLOW, "more than 10 tickets"),
    ({"nps": "neutral"}, "nps", YELLOW, "Neutral NPS"),
    # Green
    ({"use_cases": "achieved"}, "use_cases", GREEN, "Successful GitLab use-cases"),
    ({"full_devops_lifecycle": True}, "full_devops_lifecycle", GREEN, "full GitLab DevOps"),
    ({"regular_communication": True}, "regular_communication", GREEN, "Regular communication"),
    ({"user_adoption": "healthy"}, "user_adoption", GREEN, "Healthy user adoption"),
    ({"uses_new_features": True}, "uses_new_features", GREEN, "new features"),
    ({"ebrs_last_12_months": 2}, "ebrs_last_12_months", GREEN, "two successful EBRs"),
    ({"cadence_attendance": "always"}, "cadence_attendance", GREEN, "Always show up"),
    ({"interested_in_upgrading": True}, "interested_in_upgrading", GREEN, "upgrading"),
    ({"major_releases_behind": 0}, "major_releases_behind", GREEN, "Up to date"),
    (
        {"tickets_per_month": 3, "contributes_to_issues": True},
        "tickets_per_month",
        GREEN,
        "between 1 and 5 tickets",
    ),
    ({"regular_feedback": True}, "regular_feedback", GREEN, "feedback"),
    ({"nps": "positive"}, "nps", GREEN, "Positive NPS"),
]


@pytest.mark.parametrize(("signals", "name", "colour", "phrase"), CRITERIA)
def test_each_criterion_is_a_signal_with_its_colour(signals, name, colour, phrase):
    result = only(**signals)
    assert result.colour == colour
    assert [(r.signal, r.colour) for r in result.reasons] == [(name, colour)]
    assert phrase in result.reasons[0].detail


@pytest.mark.parametrize(
    "signals",
    [
        {},
        {"downgrading_or_cancelling": False, "no_communication": False, "champion_lost": False},
        {"success_defined": True},  # not on the Green list
        {"ebrs_last_12_months": 1},  # "Are not interested in EBRs (?)"
        {"ebrs_last_12_months": 0},
        {"tickets_per_month": 8},  # 6-10 is on no list
        {"tickets_per_month": 3, "contributes_to_issues": False},  # green needs both
        {"tickets_per_month": 0, "contributes_to_issues": True},
        {"tickets_per_month": 0},  # contribution unknown
        {"stakeholders": 3},
        {"onboarding": True},  # context, not a colour
        {"interested_in_upgrading": False, "full_devops_lifecycle": False},
    ],
)
def test_unknown_or_unlisted_signals_do_not_count(signals):
    result = only(**signals)
    assert result.colour is None and result.score is None and result.reasons == ()


def test_acme_worked_example_is_yellow():
    """Onboarding; low user adoption (Amber); lack of identified use cases (Yellow); late
    to cadence calls (Yellow); not interested in EBRs (?) -> "likely be scored as Yellow"."""
    result = only(
        onboarding=True,
        user_adoption="low",
        use_cases="not_defined",
        cadence_attendance="sometimes_late",
        ebrs_last_12_months=0,
    )
    assert result.colour == YELLOW
    assert result.score == 1.67
    assert [r.signal for r in result.reasons] == [
        "user_adoption",
        "use_cases",
        "cadence_attendance",
    ]


def test_captain_barnacle_worked_example_is_green_or_yellow():
    """Interested in upgrading (Green); lost champion (Amber); 2 releases behind (Amber);
    achieved a desired use case (Green); active user base -> "Green or Yellow"."""
    with_users = only(
        interested_in_upgrading=True,
        champion_lost=True,
        major_releases_behind=2,
        use_cases="achieved",
        user_adoption="healthy",
    )
    without_users = only(
        interested_in_upgrading=True,
        champion_lost=True,
        major_releases_behind=2,
        use_cases="achieved",
    )
    assert with_users.colour in (GREEN, YELLOW)
    assert without_users.colour in (GREEN, YELLOW)
    assert with_users.score == 2.2


def test_a_red_signal_makes_red_whatever_else_holds():
    result = only(
        no_executive_sponsor_access=True,
        use_cases="achieved",
        full_devops_lifecycle=True,
        regular_feedback=True,
        nps="positive",
    )
    assert result.colour == RED
    assert result.score == 2.4  # the mean is still reported


def test_mean_rounds_to_nearest_colour_and_a_tie_goes_to_the_riskier_colour():
    assert only(user_adoption="low", nps="neutral").colour == AMBER  # 1.5 -> amber
    assert only(nps="positive", use_cases="not_defined").colour == YELLOW  # 2.5 -> yellow
    assert only(nps="positive", regular_feedback=True, champion_lost=True).colour == YELLOW
    assert (
        only(
            nps="positive", regular_feedback=True, stakeholders=1, full_devops_lifecycle=True
        ).colour
        == GREEN
    )  # noqa: E501 - 2.75


def test_design_api_example_request():
    """The DESIGN.md request: low adoption, use cases not defined, late to cadence calls,
    up to date on releases (major_releases_behind 0 is green, "Up to date on releases")."""
    result = evaluate(
        health.signals_from_mapping(
            {
                "downgrading_or_cancelling": False,
                "no_communication": False,
                "no_executive_sponsor_access": False,
                "user_adoption": "low",
                "champion_lost": False,
                "use_cases": "not_defined",
                "success_defined": None,
                "major_releases_behind": 0,
                "cadence_attendance": "sometimes_late",
                "tickets_per_month": None,
                "contributes_to_issues": False,
                "nps": None,
                "stakeholders": None,
                "complaints": False,
                "acquired_by_competitor_user": False,
                "ebrs_last_12_months": None,
                "interested_in_upgrading": False,
                "full_devops_lifecycle": False,
                "regular_feedback": False,
                "uses_new_features": False,
                "onboarding": True,
            }
        )
    )
    assert result.colour == YELLOW
    assert result.as_dict()["reasons"][0] == {
        "signal": "user_adoption",
        "colour": "amber",
        "detail": "Low user adoption",
    }


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="user_adoption"):
        Signals(user_adoption="meh")
    with pytest.raises(ValueError, match="tickets_per_month"):
        Signals(tickets_per_month=-1)
    with pytest.raises(KeyError):
        health.signals_from_mapping({"vibes": True})


@pytest.mark.parametrize(
    ("score", "expected"), [(None, None), (-40, "negative"), (0, "neutral"), (35, "positive")]
)
def test_nps_class_is_the_sign_of_the_score(score, expected):
    assert health.nps_class(score) == expected


@pytest.mark.parametrize(
    ("held", "late", "missed", "attendance"),
    [
        (6, 0, 0, "always"),  # "Always show up to regular cadence calls"
        (1, 0, 0, "always"),
        (5, 0, 1, "sometimes_late"),  # "Occasionally doesn't show up or are late"
        (3, 1, 0, "sometimes_late"),
        (0, 0, 1, "sometimes_late"),  # once is not "frequently"
        (2, 1, 1, "often_absent"),  # "Frequently don't show up or are late"
        (1, 0, 3, "often_absent"),
        (4, 1, 1, "sometimes_late"),  # 2 of 6: less than half the time
        (0, 0, 0, None),  # no call with a recorded outcome: unknown
    ],
)
def test_cadence_attendance_from_recorded_outcomes(held, late, missed, attendance):
    """tam-account-triage.md, Amber: "Frequently don't show up or are late to scheduled
    cadence calls."; Yellow: "Occasionally doesn't show up or are late to scheduled cadence
    calls." Attendance comes from scheduled calls whose outcome was recorded, never from
    how many calls the TAM held."""
    assert (
        health.cadence_attendance_from_outcomes(held=held, late=late, missed=missed) == attendance
    )


def test_calls_never_scheduled_say_nothing_about_attendance():
    """Issue 14: two calls held in 180 days of a monthly cadence used to read as the
    customer "frequently not showing up" (amber). With no missed call recorded, both were
    attended."""
    assert health.cadence_attendance_from_outcomes(held=2, late=0, missed=0) == "always"
    colour = health.evaluate(Signals(cadence_attendance="always")).colour
    assert colour == GREEN


# --- Labels, milestone, body ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "start", "milestone"),
    [
        (dt.date(2026, 11, 22), 2, "FY27-Q4"),  # DESIGN.md's example
        (dt.date(2026, 2, 1), 2, "FY27-Q1"),
        (dt.date(2027, 1, 31), 2, "FY27-Q4"),
        (dt.date(2026, 1, 15), 2, "FY26-Q4"),
        (dt.date(2026, 5, 1), 2, "FY27-Q2"),
        (dt.date(2026, 7, 31), 2, "FY27-Q2"),
        (dt.date(2026, 3, 5), 1, "FY26-Q1"),
        (dt.date(2026, 12, 31), 1, "FY26-Q4"),
    ],
)
def test_milestone_is_the_fiscal_quarter_of_the_renewal_date(day, start, milestone):
    assert fiscal_quarter(day, fiscal_year_start_month=start) == milestone


def test_fiscal_quarter_bounds():
    assert fiscal_quarter_bounds(dt.date(2026, 11, 22), fiscal_year_start_month=2) == (
        dt.date(2026, 11, 1),
        dt.date(2027, 1, 31),
    )
    assert fiscal_quarter_bounds(dt.date(2026, 2, 3), fiscal_year_start_month=2) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 4, 30),
    )


def test_labels_round_trip():
    labels = issue_labels(colour="red", new=True, churn_class="E&U", region="EMEA")
    assert labels == ["Red", "New", "E&U", "EMEA"]
    state = read_labels(labels)
    assert (state.colour, state.new, state.churn_class) == ("red", True, "E&U")
    # Two colour labels after a half-done board move: the riskiest wins.
    assert read_labels(["Green", "Amber"]).colour == "amber"


def test_issue_body_follows_the_template_and_carries_the_marker():
    body = issue_body(
        issue_id=12,
        salesforce_url="https://sf.example/001",
        success_plan_url="",
        renewal_date=dt.date(2026, 11, 22),
        reason="* Amber: Low user adoption",
    )
    for heading in (
        "**Salesforce URL**",
        "**Customer Success Plan URL**",
        "**Contract Renewal Date**",
        "**Reason for Health Score**",
    ):
        assert heading in body
    assert "2026-11-22" in body
    assert marker_id(body) == 12
    assert marker(1) not in body  # 1 is not a prefix match of 12
