"""Customer health scoring: the handbook's Red / Amber / Yellow / Green criteria as signals.

Pure rules: no Django import (DESIGN.md). Source: handbook/tam-account-triage.md,
"Health Scoring Guidelines".

How a colour is reached (DESIGN.md, "Health colours"):

- every criterion of the four lists is a signal; a signal that holds carries the colour
  of the list it is in, with a reason quoting the handbook line;
- a red signal ("They've told us they are downgrading/cancelling", "No communication",
  "Limited or no access to executive sponsors") makes the account red;
- otherwise the colours of the signals that hold are averaged (green 3, yellow 2,
  amber 1, red 0) and the mean is rounded to the nearest colour. An exact tie (x.5) is
  rounded towards the riskier colour: the triage process exists to catch risk early
  ("gaining visibility of potential churn in advance"), so a coin-flip goes to the swarm;
- an unknown signal (None, or a yes/no criterion that does not hold) does not count:
  "Are not interested in EBRs (?)" is the handbook's own example of a signal that is
  left out of the judgement.

Both worked examples of the handbook reproduce (tests/unit/test_health.py): Acme Inc.
(amber, yellow, yellow -> 1.67 -> yellow) and Captain Barnacle's Custom Paints (green,
amber, amber, green, green -> 2.2 -> yellow; "Green or Yellow").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

GREEN, YELLOW, AMBER, RED = "green", "yellow", "amber", "red"
COLOURS: tuple[str, ...] = (GREEN, YELLOW, AMBER, RED)
AT_RISK: frozenset[str] = frozenset({AMBER, RED})
# "the colours are averaged (green 3, yellow 2, amber 1, red 0)" (DESIGN.md)
POINTS: dict[str, int] = {GREEN: 3, YELLOW: 2, AMBER: 1, RED: 0}
BY_POINTS: dict[int, str] = {v: k for k, v in POINTS.items()}

USER_ADOPTION = ("low", "healthy")
USE_CASES = ("achieved", "not_defined", "not_achieved")
CADENCE_ATTENDANCE = ("always", "sometimes_late", "often_absent")
NPS = ("positive", "neutral", "negative")
ENUMS: dict[str, tuple[str, ...]] = {
    "user_adoption": USER_ADOPTION,
    "use_cases": USE_CASES,
    "cadence_attendance": CADENCE_ATTENDANCE,
    "nps": NPS,
}


@dataclass(frozen=True)
class Signals:
    """What is known about one account. None = unknown (does not count).

    The names of the DESIGN.md evaluate API, plus four criteria the API example does not
    list (`lack_of_response`, `little_usage_info`, `missing_key_contacts`,
    `regular_communication`) so that every line of the handbook's lists is a signal.
    `onboarding` is context, not a colour: the handbook lists "Onboarding customer"
    among Acme's attributes without a colour.
    """

    downgrading_or_cancelling: bool | None = None
    no_communication: bool | None = None
    no_executive_sponsor_access: bool | None = None
    user_adoption: str | None = None
    lack_of_response: bool | None = None
    complaints: bool | None = None
    champion_lost: bool | None = None
    use_cases: str | None = None
    success_defined: bool | None = None
    major_releases_behind: int | None = None
    cadence_attendance: str | None = None
    tickets_per_month: int | None = None
    contributes_to_issues: bool | None = None
    acquired_by_competitor_user: bool | None = None
    nps: str | None = None
    little_usage_info: bool | None = None
    missing_key_contacts: bool | None = None
    stakeholders: int | None = None
    full_devops_lifecycle: bool | None = None
    regular_communication: bool | None = None
    uses_new_features: bool | None = None
    ebrs_last_12_months: int | None = None
    interested_in_upgrading: bool | None = None
    regular_feedback: bool | None = None
    onboarding: bool | None = None

    def __post_init__(self) -> None:
        for name, allowed in ENUMS.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)} or None")
        for name in (
            "major_releases_behind",
            "tickets_per_month",
            "stakeholders",
            "ebrs_last_12_months",
        ):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0 or None")


SIGNAL_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Signals))


@dataclass(frozen=True)
class Reason:
    signal: str
    colour: str
    detail: str


@dataclass(frozen=True)
class HealthResult:
    """The suggested colour (None when no signal is known), the mean score and why."""

    colour: str | None
    score: float | None
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "colour": self.colour,
            "score": self.score,
            "reasons": [
                {"signal": r.signal, "colour": r.colour, "detail": r.detail} for r in self.reasons
            ],
        }


Finding = tuple[str, str] | None  # (colour, detail) when the criterion holds


# --- Red ----------------------------------------------------------------------------------


def downgrading_or_cancelling(s: Signals) -> Finding:
    """Red: "They've told us they are downgrading/cancelling." """
    if s.downgrading_or_cancelling:
        return RED, "They've told us they are downgrading/cancelling"
    return None


def no_communication(s: Signals) -> Finding:
    """Red: "No communication." """
    if s.no_communication:
        return RED, "No communication"
    return None


def no_executive_sponsor_access(s: Signals) -> Finding:
    """Red: "Limited or no access to executive sponsors." """
    if s.no_executive_sponsor_access:
        return RED, "Limited or no access to executive sponsors"
    return None


# --- Amber (and the green/yellow ends of the same scales) ---------------------------------


def user_adoption(s: Signals) -> Finding:
    """Amber: "Low user adoption." Green: "Healthy user adoption rate." """
    if s.user_adoption == "low":
        return AMBER, "Low user adoption"
    if s.user_adoption == "healthy":
        return GREEN, "Healthy user adoption rate"
    return None


def lack_of_response(s: Signals) -> Finding:
    """Amber: "Lack of response to us and/ or we haven't done much discovery." """
    if s.lack_of_response:
        return AMBER, "Lack of response to us and/or we haven't done much discovery"
    return None


def complaints(s: Signals) -> Finding:
    """Amber: "Complains about the company (responsiveness, feature turnaround, missed
    priorities in direction)." """
    if s.complaints:
        return (
            AMBER,
            "Complains about the company (responsiveness, feature turnaround, "
            "missed priorities in direction)",
        )
    return None


def champion_lost(s: Signals) -> Finding:
    """Amber: "Loss of our GitLab champion." """
    if s.champion_lost:
        return AMBER, "Loss of our GitLab champion"
    return None


def use_cases(s: Signals) -> Finding:
    """Amber: "Original GitLab use-cases not achieved."
    Yellow: "Lack of clearly defined GitLab use-cases."
    Green: "Successful GitLab use-cases." """
    if s.use_cases == "not_achieved":
        return AMBER, "Original GitLab use-cases not achieved"
    if s.use_cases == "not_defined":
        return YELLOW, "Lack of clearly defined GitLab use-cases"
    if s.use_cases == "achieved":
        return GREEN, "Successful GitLab use-cases"
    return None


def success_defined(s: Signals) -> Finding:
    """Amber: "Customer doesn't know what success looks like or it is ill-defined."

    Only the negative counts: knowing what success looks like is not on the Green list."""
    if s.success_defined is False:
        return AMBER, "Customer doesn't know what success looks like or it is ill-defined"
    return None


def major_releases_behind(s: Signals) -> Finding:
    """Amber: "At least two major releases behind."
    Yellow: "At least one major release behind."
    Green: "Up to date on releases." """
    n = s.major_releases_behind
    if n is None:
        return None
    if n >= 2:
        return AMBER, f"At least two major releases behind ({n} behind)"
    if n == 1:
        return YELLOW, "At least one major release behind (1 behind)"
    return GREEN, "Up to date on releases"


def cadence_attendance(s: Signals) -> Finding:
    """Amber: "Frequently don't show up or are late to scheduled cadence calls."
    Yellow: "Occasionally doesn't show up or are late to scheduled cadence calls."
    Green: "Always show up to regular cadence calls and communicates when they can't." """
    if s.cadence_attendance == "often_absent":
        return AMBER, "Frequently don't show up or are late to scheduled cadence calls"
    if s.cadence_attendance == "sometimes_late":
        return YELLOW, "Occasionally doesn't show up or are late to scheduled cadence calls"
    if s.cadence_attendance == "always":
        return GREEN, "Always show up to regular cadence calls and communicates when they can't"
    return None


def tickets_per_month(s: Signals) -> Finding:
    """Amber: "Raises more than 15 tickets a month."
    Yellow: "Raises more than 10 tickets a month."
    Yellow: "Doesn't raise any tickets or contribute to any issues."
    Green: "Raises between 1 and 5 tickets a month and regularly contributes to issues."

    6 to 10 tickets a month is on no list, so it does not count; nor does 1-5 tickets
    without contributions (the green line needs both)."""
    n = s.tickets_per_month
    if n is None:
        return None
    if n > 15:
        return AMBER, f"Raises more than 15 tickets a month ({n} a month)"
    if n > 10:
        return YELLOW, f"Raises more than 10 tickets a month ({n} a month)"
    if n == 0 and s.contributes_to_issues is False:
        return YELLOW, "Doesn't raise any tickets or contribute to any issues"
    if 1 <= n <= 5 and s.contributes_to_issues:
        return (
            GREEN,
            f"Raises between 1 and 5 tickets a month and regularly contributes to issues "
            f"({n} a month)",
        )
    return None


def acquired_by_competitor_user(s: Signals) -> Finding:
    """Amber: "Customer was acquired and parent company uses competitor." """
    if s.acquired_by_competitor_user:
        return AMBER, "Customer was acquired and parent company uses competitor"
    return None


def nps(s: Signals) -> Finding:
    """Amber: "Negative NPS scores." Yellow: "Neutral NPS scores."
    Green: "Positive NPS scores." """
    if s.nps == "negative":
        return AMBER, "Negative NPS scores"
    if s.nps == "neutral":
        return YELLOW, "Neutral NPS scores"
    if s.nps == "positive":
        return GREEN, "Positive NPS scores"
    return None


# --- Yellow ---------------------------------------------------------------------------------


def little_usage_info(s: Signals) -> Finding:
    """Yellow: "We don't have much info about how they are using GitLab." """
    if s.little_usage_info:
        return YELLOW, "We don't have much info about how they are using GitLab"
    return None


def missing_key_contacts(s: Signals) -> Finding:
    """Yellow: "Don't have the right contacts for each key person." """
    if s.missing_key_contacts:
        return YELLOW, "Don't have the right contacts for each key person"
    return None


def stakeholders(s: Signals) -> Finding:
    """Yellow: "Only one primary stakeholder." (none known at all counts the same)."""
    if s.stakeholders is not None and s.stakeholders <= 1:
        return YELLOW, f"Only one primary stakeholder ({s.stakeholders} known)"
    return None


# --- Green ----------------------------------------------------------------------------------


def full_devops_lifecycle(s: Signals) -> Finding:
    """Green: "Using the full GitLab DevOps lifecycle." """
    if s.full_devops_lifecycle:
        return GREEN, "Using the full GitLab DevOps lifecycle"
    return None


def regular_communication(s: Signals) -> Finding:
    """Green: "Regular communication and positive relationship." """
    if s.regular_communication:
        return GREEN, "Regular communication and positive relationship"
    return None


def uses_new_features(s: Signals) -> Finding:
    """Green: "Regularly show interest and utilisation in new features." """
    if s.uses_new_features:
        return GREEN, "Regularly show interest and utilisation in new features"
    return None


def ebrs_last_12_months(s: Signals) -> Finding:
    """Green: "At least two successful EBRs every year."

    Fewer is not a risk signal: "Are not interested in EBRs (?)" (Acme example)."""
    if s.ebrs_last_12_months is not None and s.ebrs_last_12_months >= 2:
        return GREEN, f"At least two successful EBRs every year ({s.ebrs_last_12_months})"
    return None


def interested_in_upgrading(s: Signals) -> Finding:
    """Green: "They are interested in upgrading." """
    if s.interested_in_upgrading:
        return GREEN, "They are interested in upgrading"
    return None


def regular_feedback(s: Signals) -> Finding:
    """Green: "Regularly provides feedback on how to improve GitLab." """
    if s.regular_feedback:
        return GREEN, "Regularly provides feedback on how to improve GitLab"
    return None


# Order: red first, then the lists top to bottom, as the handbook reads.
CRITERIA: tuple[tuple[str, Callable[[Signals], Finding]], ...] = (
    ("downgrading_or_cancelling", downgrading_or_cancelling),
    ("no_communication", no_communication),
    ("no_executive_sponsor_access", no_executive_sponsor_access),
    ("user_adoption", user_adoption),
    ("lack_of_response", lack_of_response),
    ("complaints", complaints),
    ("champion_lost", champion_lost),
    ("use_cases", use_cases),
    ("success_defined", success_defined),
    ("major_releases_behind", major_releases_behind),
    ("cadence_attendance", cadence_attendance),
    ("tickets_per_month", tickets_per_month),
    ("acquired_by_competitor_user", acquired_by_competitor_user),
    ("nps", nps),
    ("little_usage_info", little_usage_info),
    ("missing_key_contacts", missing_key_contacts),
    ("stakeholders", stakeholders),
    ("full_devops_lifecycle", full_devops_lifecycle),
    ("regular_communication", regular_communication),
    ("uses_new_features", uses_new_features),
    ("ebrs_last_12_months", ebrs_last_12_months),
    ("interested_in_upgrading", interested_in_upgrading),
    ("regular_feedback", regular_feedback),
)


def round_to_colour(mean: Fraction) -> str:
    """Nearest colour to a mean of points; an exact tie goes to the riskier colour."""
    points = math.ceil(mean - Fraction(1, 2))
    return BY_POINTS[max(0, min(3, points))]


def evaluate(signals: Signals) -> HealthResult:
    """The suggested colour for `signals`, with a reason per signal that counted.

    "If an account is in an Amber or Red state, it is deemed as 'At Risk'" - see the
    module docstring for the red rule and the averaging."""
    reasons = []
    for name, criterion in CRITERIA:
        finding = criterion(signals)
        if finding is not None:
            reasons.append(Reason(signal=name, colour=finding[0], detail=finding[1]))
    if not reasons:
        return HealthResult(colour=None, score=None, reasons=())
    mean = Fraction(sum(POINTS[r.colour] for r in reasons), len(reasons))
    colour = RED if any(r.colour == RED for r in reasons) else round_to_colour(mean)
    return HealthResult(colour=colour, score=round(float(mean), 2), reasons=tuple(reasons))


def signals_from_mapping(data: Mapping[str, Any]) -> Signals:
    """Signals from a dict of known names (unknown names raise KeyError)."""
    unknown = set(data) - set(SIGNAL_NAMES)
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    return Signals(**dict(data))


# --- Derived from data (no Django: the caller passes plain values) -------------------------


def nps_class(score: int | None) -> str | None:
    """ "Positive / Neutral / Negative NPS scores" read literally: the sign of the
    account's NPS (-100..100): below 0 negative, 0 neutral, above 0 positive."""
    if score is None:
        return None
    if score < 0:
        return "negative"
    if score == 0:
        return "neutral"
    return "positive"


def cadence_attendance_from_outcomes(*, held: int, late: int, missed: int) -> str | None:
    """Attendance read from the scheduled cadence calls whose outcome the TAM recorded
    (held, held but late, missed); calls the TAM never scheduled say nothing about the
    customer, and a rescheduled call is the customer who "communicates when they can't".

    Amber: "Frequently don't show up or are late to scheduled cadence calls."
    Yellow: "Occasionally doesn't show up or are late to scheduled cadence calls."
    Green: "Always show up to regular cadence calls and communicates when they can't."

    Reading: none missed or late -> "always"; missed or late at least twice and at least
    half the time -> "often_absent" (frequently); otherwise, once or more -> "sometimes_late"
    (occasionally). No recorded outcome -> unknown."""
    absent = late + missed
    if held + absent <= 0:
        return None
    if absent == 0:
        return "always"
    if absent >= 2 and 2 * absent >= held + absent:
        return "often_absent"
    return "sometimes_late"
