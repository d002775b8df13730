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

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
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
    adoption_dropped: bool | None = None
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
    """`source` says who answered the signal when the caller knows it (`tam`, `data`,
    `usage`) and `evidence` the figures behind it; both are left out of `as_dict` when
    empty, so callers that pass no sources see the three keys they always did."""

    signal: str
    colour: str
    detail: str
    source: str = ""
    evidence: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"signal": self.signal, "colour": self.colour, "detail": self.detail}
        if self.source:
            out["source"] = self.source
        if self.evidence:
            out["evidence"] = self.evidence
        return out


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
            "reasons": [r.as_dict() for r in self.reasons],
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


def adoption_dropped(s: Signals) -> Finding:
    """Amber (a reading): user adoption fell by more than the rule set's share from one
    month to the next. Not a line of the lists: the early warning of "Low user adoption"
    that the triage process exists for ("gaining visibility of potential churn in
    advance"), so it carries that line's colour. Only read from usage data."""
    if s.adoption_dropped:
        return AMBER, "User adoption dropped month over month"
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
    ("adoption_dropped", adoption_dropped),
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


def evaluate(
    signals: Signals, *, sources: Mapping[str, tuple[str, str]] | None = None
) -> HealthResult:
    """The suggested colour for `signals`, with a reason per signal that counted.

    `sources` (optional): per signal name, (who answered it, the evidence), copied onto
    its reason so the trace says which source decided (`merge_usage`).

    "If an account is in an Amber or Red state, it is deemed as 'At Risk'" - see the
    module docstring for the red rule and the averaging."""
    sources = sources or {}
    reasons = []
    for name, criterion in CRITERIA:
        finding = criterion(signals)
        if finding is not None:
            source, evidence = sources.get(name, ("", ""))
            reasons.append(
                Reason(
                    signal=name,
                    colour=finding[0],
                    detail=finding[1],
                    source=source,
                    evidence=evidence,
                )
            )
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


# --- Derived from product usage (the usage app gathers the measures, nothing here reads
# the database) ------------------------------------------------------------------------------

# The signals product usage can answer. `adoption_dropped` is only ever read from usage.
USAGE_SIGNALS: tuple[str, ...] = (
    "user_adoption",
    "adoption_dropped",
    "major_releases_behind",
    "tickets_per_month",
    "full_devops_lifecycle",
    "uses_new_features",
)
USAGE_ONLY_SIGNALS: tuple[str, ...] = ("adoption_dropped",)


@dataclass(frozen=True)
class UsageThresholds:
    """The rule set's usage thresholds (`prioritization.models.RuleSet.usage_*`; these
    defaults when no rule set covers the account). Each is a reading: the handbook names
    the criterion, not the number (docs/rules.md)."""

    adoption_low_below: Fraction = Fraction(1, 2)
    adoption_healthy_from: Fraction = Fraction(7, 10)
    adoption_drop_above: Fraction = Fraction(1, 5)
    full_lifecycle_stages: int = 9
    new_features_min: int = 1


@dataclass(frozen=True)
class UsageMeasures:
    """One account's product usage, latest month first (plain values from the usage app).

    `month` is the latest month with data; `previous_*` the month before it (only when it
    is the calendar month just before). `licensed_seats` falls back to Salesforce's
    `Licensed_Seats__c` when usage does not report it (`seats_source` says which).
    `released_majors`: the major versions released so far (the admin's releases table)."""

    month: dt.date | None = None
    active_users: int | None = None
    licensed_seats: int | None = None
    seats_source: str = "usage"
    previous_month: dt.date | None = None
    previous_active_users: int | None = None
    previous_licensed_seats: int | None = None
    version: str | None = None
    released_majors: tuple[int, ...] = ()
    tickets_opened: int | None = None
    stages_in_use: int | None = None
    new_features_used: int | None = None


def _pct(share: Fraction) -> str:
    return f"{math.floor(share * 100 + Fraction(1, 2))}%"


def _month(day: dt.date | None) -> str:
    return day.strftime("%b") if day else "?"


def adoption_share(active: int | None, seats: int | None) -> Fraction | None:
    """Active users / licensed seats; unknown without seats."""
    if active is None or not seats:
        return None
    return Fraction(active, seats)


def version_major(version: str | None) -> int | None:
    """ "17.3" -> 17; anything not starting with a number -> None."""
    if not version:
        return None
    head = version.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None


def releases_behind(version: str | None, released_majors: Sequence[int]) -> int | None:
    """Major releases since the account's own: the released majors above its major."""
    major = version_major(version)
    if major is None or not released_majors:
        return None
    return sum(1 for m in set(released_majors) if m > major)


def usage_signals(m: UsageMeasures, t: UsageThresholds) -> dict[str, tuple[Any, str]]:
    """Signal values read from usage, each with its evidence. A measure that is missing
    gives no signal (unknown does not count).

    - "Low user adoption." / "Healthy user adoption rate.": active users / licensed seats
      below `adoption_low_below` -> low; at or above `adoption_healthy_from` -> healthy;
      between the two, neither list applies.
    - adoption dropped (amber, a reading): the share fell by more than
      `adoption_drop_above` of itself since the month before.
    - "At least two major releases behind." / "At least one major release behind." /
      "Up to date on releases.": majors released above the version in use.
    - "Raises more than 15 tickets a month." (and 10): tickets opened in the month.
    - "Using the full GitLab DevOps lifecycle.": at least `full_lifecycle_stages` stages.
    - "Regularly show interest and utilisation in new features.": at least
      `new_features_min` new features used in the month."""
    out: dict[str, tuple[Any, str]] = {}
    month = _month(m.month)
    share = adoption_share(m.active_users, m.licensed_seats)
    if share is not None:
        seats_note = "" if m.seats_source == "usage" else f" ({m.seats_source} seats)"
        figures = (
            f"{m.active_users:,} of {m.licensed_seats:,} seats active in {month} "
            f"({_pct(share)}){seats_note}"
        )
        if share < t.adoption_low_below:
            out["user_adoption"] = ("low", f"{figures} — below {_pct(t.adoption_low_below)}")
        elif share >= t.adoption_healthy_from:
            out["user_adoption"] = (
                "healthy",
                f"{figures} — at least {_pct(t.adoption_healthy_from)}",
            )
        before = adoption_share(m.previous_active_users, m.previous_licensed_seats)
        if before:
            drop = (before - share) / before
            dropped = drop > t.adoption_drop_above
            change = "down" if drop > 0 else "up"
            out["adoption_dropped"] = (
                dropped,
                f"{_pct(share)} in {month}, {change} from {_pct(before)} in "
                f"{_month(m.previous_month)} ({_pct(abs(drop))}) — "
                f"{'more than' if dropped else 'not more than'} {_pct(t.adoption_drop_above)}",
            )
    behind = releases_behind(m.version, m.released_majors)
    if behind is not None:
        latest = max(m.released_majors)
        out["major_releases_behind"] = (
            behind,
            f"on {m.version} in {month}; latest major {latest} — "
            f"{behind} major release{'' if behind == 1 else 's'} behind",
        )
    if m.tickets_opened is not None:
        out["tickets_per_month"] = (
            m.tickets_opened,
            f"{m.tickets_opened:,} ticket{'' if m.tickets_opened == 1 else 's'} opened in {month}",
        )
    if m.stages_in_use is not None:
        full = m.stages_in_use >= t.full_lifecycle_stages
        out["full_devops_lifecycle"] = (
            full,
            f"{m.stages_in_use} stages in use in {month} — "
            f"{'at least' if full else 'fewer than'} {t.full_lifecycle_stages}",
        )
    if m.new_features_used is not None:
        uses = m.new_features_used >= t.new_features_min
        out["uses_new_features"] = (
            uses,
            f"{m.new_features_used} new feature{'' if m.new_features_used == 1 else 's'} "
            f"used in {month}",
        )
    return out


def merge_usage(
    known: Mapping[str, Any],
    derived: Mapping[str, tuple[Any, str]],
    *,
    known_source: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The signal values to evaluate and, per signal, (source, evidence).

    The TAM's own answer wins where given ("a mix of art and science"): a known value
    keeps its source (`known_source`, default `tam`) and the usage figures go beside it as
    evidence; usage fills only the signals nobody answered."""
    known_source = known_source or {}
    values = dict(known)
    sources: dict[str, tuple[str, str]] = {
        name: (known_source.get(name, "tam"), "") for name, v in known.items() if v is not None
    }
    for name, (value, evidence) in derived.items():
        if known.get(name) is None:
            values[name] = value
            sources[name] = ("usage", evidence)
        elif name in sources:
            sources[name] = (sources[name][0], f"usage data: {evidence}")
    return values, sources
