"""Plain data the priority rules read and return. No Django here (DESIGN.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

MODELS: tuple[str, ...] = ("us_enterprise", "emea_enterprise", "commercial", "flat_p1")
HEALTH_COLOURS: tuple[str, ...] = ("green", "yellow", "amber", "red")
AT_RISK_COLOURS: frozenset[str] = frozenset({"amber", "red"})
SUCCESS_PLANS: tuple[str, ...] = ("none", "objectives", "full")
LABELS: dict[int, str] = {1: "P1", 2: "P2", 3: "P3", 4: "P4"}


@dataclass(frozen=True)
class EmeaFacts:
    """The seven EMEA Enterprise parameters, each a yes/no the TAM answers."""

    org_change: bool = False
    onboarding: bool = False
    infrastructure_change: bool = False
    weekly_engagement_requested: bool = False
    lam_seat_gap: bool = False
    expansion_play: bool = False
    tam_handover: bool = False


@dataclass(frozen=True)
class ExceptionFacts:
    """A priority exception (or an EMEA proposal) and whether the manager approved it."""

    priority: int
    approved: bool = False


@dataclass(frozen=True)
class AccountFacts:
    """Everything the rules know about one account: the fields of the evaluate API.

    Every field but `as_of` defaults to false / None / 0 / "none" as in DESIGN.md.
    `arr_rank` is the rank by ARR within the account's model population (1 = largest).
    """

    as_of: dt.date
    model: str | None = None
    region: str | None = None
    segment: str | None = None
    arr: float = 0.0
    arr_rank: int | None = None
    tam_assigned: bool = False
    unmanaged_child: bool = False
    digital_only: bool = False
    onboarding_started: dt.date | None = None
    onboarding_completed: dt.date | None = None
    uptier_opportunity_close_date: dt.date | None = None
    stage_adoption_hours_per_week: float = 0.0
    infrastructure_change_hours_per_week: float = 0.0
    churn_risk: bool = False
    health: str | None = None
    in_triage: bool = False
    success_plan: str = "none"
    critical_project: bool = False
    stages_adopted: int = 0
    # Where `stages_adopted` came from when not the TAM: "usage" (product usage data).
    stages_adopted_source: str = ""
    key_logo: bool = False
    channel_engagement: bool = False
    nps: int | None = None
    emea: EmeaFacts = field(default_factory=EmeaFacts)
    exception: ExceptionFacts | None = None


@dataclass(frozen=True)
class Params:
    """Every threshold of every model. A RuleSet row stores one of these per region and
    segment; the defaults are the handbook's numbers."""

    model: str = "us_enterprise"
    # Common pre-rules.
    onboarding_max_days: int = 0  # 0: onboarding keeps P1 until it is complete (handbook)
    digital_tam_trial: bool = False  # Public Sector "trialing a TAM-assigned digital customer"
    # us_enterprise
    uptier_window_months: int = 6
    stage_adoption_hours: float = 2.0
    infrastructure_change_hours: float = 2.0
    onboarding_window_days: int = 45
    # commercial
    commercial_new_customer_days: int = 90
    commercial_top_n: int = 30
    commercial_p2_arr_below: float = 75_000.0
    commercial_min_stages: int = 3
    commercial_uptier_window_months: int = 9

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Params:
        """The parameters of a stored rule-set version (JSON: decimals as "2.0"); a field
        the version predates keeps its handbook default."""
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for name in cls.field_names():
            value = values.get(name)
            if value is None:
                continue
            kind = type(getattr(defaults, name))
            kwargs[name] = value if kind is bool else kind(value)
        return cls(**kwargs)


@dataclass(frozen=True)
class TraceStep:
    """One question of the flow: the rule, the question as the handbook asks it, the
    answer and the evidence it rests on."""

    rule: str
    question: str
    answer: bool
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: that deep-copies, and a review builds a million of these.
        return {
            "rule": self.rule,
            "question": self.question,
            "answer": self.answer,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Decision:
    priority: int
    model: str
    decided_by: str
    trace: tuple[TraceStep, ...]

    @property
    def label(self) -> str:
        return LABELS[self.priority]

    def trace_dicts(self) -> list[dict[str, Any]]:
        return [step.as_dict() for step in self.trace]
