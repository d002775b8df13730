"""`evaluate(facts, params)`: the handbook's prioritization models as plain functions.

Each model asks its questions in the handbook's order and records every one in the
trace (rule, question, answer, evidence). The chosen readings of vague lines are in the
docstrings and in docs/rules.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache

from prioritization.rules.registry import RULES
from prioritization.rules.types import (
    AT_RISK_COLOURS,
    MODELS,
    AccountFacts,
    Decision,
    Params,
    TraceStep,
)


class UnknownModel(ValueError):
    pass


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus whole months, clamped to the last day of the target month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


@lru_cache(maxsize=256)
def _questions(params: Params) -> dict[str, str]:
    # Once per rule set: a quarterly review asks the same questions 100,000 times.
    return {rule_id: rule.question_for(params) for rule_id, rule in RULES.items()}


class _Trace:
    def __init__(self, params: Params) -> None:
        self.questions = _questions(params)
        self.steps: list[TraceStep] = []

    def ask(self, rule: str, answer: bool, evidence: str) -> bool:
        self.steps.append(TraceStep(rule, self.questions[rule], answer, evidence))
        return answer


def _money(value: float) -> str:
    return f"{value:,.0f} USD"


def _exception_evidence(facts: AccountFacts, wanted: int) -> tuple[bool, str]:
    exc = facts.exception
    if exc is None:
        return False, "no exception on record"
    if exc.priority != wanted:
        return False, f"the exception on record asks for P{exc.priority}"
    if not exc.approved:
        return False, f"P{wanted} exception requested, not approved by the manager"
    return True, f"P{wanted} exception approved by the TAM's manager"


def _finish(
    trace: _Trace, facts: AccountFacts, priority: int, decided_by: str, *, ask_p1: bool = True
) -> tuple[int, str]:
    """The exception paths every TAM-assigned model shares: an approved P1 exception lifts
    a P2, an approved P2 exception lowers a P1 ("p1-.->p2exception")."""
    if priority == 2 and ask_p1:
        held, evidence = _exception_evidence(facts, 1)
        if trace.ask("p1_exception", held, evidence):
            return 1, "p1_exception"
    if priority == 1:
        held, evidence = _exception_evidence(facts, 2)
        if trace.ask("p2_exception", held, evidence):
            return 2, "p2_exception"
    return priority, decided_by


# --- Pre-rules -------------------------------------------------------------------------


def _pre_rules(facts: AccountFacts, params: Params, trace: _Trace) -> tuple[int, str] | None:
    """ "Pr3 is solely for unmanaged child accounts, and Pr4 is only for our digital
    customers and not for the TAM-assigned segment, with the exception of the Public Sector
    that is trialing a TAM-assigned digital customer." / "A new TAM-assigned customer coming
    on to GitLab will default to Pr1 until their onboarding enablement is complete."

    Reading of the Public Sector exception: it is an exception to "not for the TAM-assigned
    segment" (the only clause it can change), so with `digital_tam_trial` on a TAM-assigned
    digital-only account is P4 as well; with it off a TAM-assigned account is never P4.

    Onboarding is "not complete" when it has started (on or before `as_of`) and has no
    completion date on or before `as_of`. `onboarding_max_days` (0 = no limit, the
    handbook's reading) lets an admin stop a forgotten completion date from pinning P1.
    """
    if trace.ask(
        "unmanaged_child",
        facts.unmanaged_child,
        "child account without a TAM of its own"
        if facts.unmanaged_child
        else "not an unmanaged child account",
    ):
        return 3, "unmanaged_child"

    # Pr4 is "not for the TAM-assigned segment": a TAM-assigned account is never P4 unless
    # its rule set runs the Public Sector trial, which puts TAM-assigned digital customers
    # in Pr4 too (the exception is to "not for the TAM-assigned segment"; docs/rules.md).
    digital = facts.digital_only and (not facts.tam_assigned or params.digital_tam_trial)
    if not facts.digital_only:
        evidence = "not digital-only"
    elif not facts.tam_assigned:
        evidence = "digital-only customer, no TAM assigned"
    elif params.digital_tam_trial:
        evidence = (
            "digital-only and TAM-assigned, in a segment trialing TAM-assigned digital customers"
        )
    else:
        evidence = "digital-only, but TAM-assigned: Pr4 is not for the TAM-assigned segment"
    if trace.ask("digital_only", digital, evidence):
        return 4, "digital_only"

    started, completed = facts.onboarding_started, facts.onboarding_completed
    incomplete = False
    if not facts.tam_assigned:
        evidence = "not TAM-assigned"
    elif started is None or started > facts.as_of:
        evidence = "onboarding not started"
    elif completed is not None and completed <= facts.as_of:
        evidence = f"onboarding started {started}, completed {completed}"
    else:
        days = (facts.as_of - started).days
        if params.onboarding_max_days and days > params.onboarding_max_days:
            evidence = (
                f"onboarding started {started} ({days} days ago) and never marked complete; "
                f"past the {params.onboarding_max_days}-day limit"
            )
        else:
            incomplete = True
            evidence = f"onboarding started {started} ({days} days ago), not complete"
    if trace.ask("onboarding_incomplete", incomplete, evidence):
        return 1, "onboarding_incomplete"
    return None


# --- US Enterprise ----------------------------------------------------------------------


def _uptier_within(facts: AccountFacts, months: int) -> tuple[bool, str]:
    close = facts.uptier_opportunity_close_date
    if close is None:
        return False, "no open up-tier opportunity"
    horizon = add_months(facts.as_of, months)
    days = (close - facts.as_of).days
    if days < 0:
        # Still open past its close date: closing any day now, so it counts.
        return True, f"close date {close} passed {-days} days ago, still open"
    if close <= horizon:
        return True, f"closes {close} ({days} days)"
    return False, f"closes {close} ({days} days), after {horizon}"


def _hours(hours: float, threshold: float) -> tuple[bool, str]:
    return hours > threshold, f"{hours:g} h/week of TAM time (threshold > {threshold:g} h)"


def us_enterprise(facts: AccountFacts, params: Params, trace: _Trace) -> tuple[int, str]:
    """The US Enterprise flowchart, in its order:

    "Open up-tier opp closing in next 6 months" -> "Stage adoption this quarter requiring
    >2hrs TAM time per week" -> "Infra change this quarter requiring >2hrs TAM time per
    week" -> "At risk of contraction or churn" -> "First 30-45 days of onboarding" ->
    "P1 exception*" -> Priority 2; "p1-.->p2exception": an approved P2 exception turns a P1
    into a P2. An open up-tier past its close date counts as closing within the window.
    """
    held, evidence = _uptier_within(facts, params.uptier_window_months)
    if trace.ask("uptier_opportunity", held, evidence):
        return _finish(trace, facts, 1, "uptier_opportunity")
    held, evidence = _hours(facts.stage_adoption_hours_per_week, params.stage_adoption_hours)
    if trace.ask("stage_adoption", held, evidence):
        return _finish(trace, facts, 1, "stage_adoption")
    held, evidence = _hours(
        facts.infrastructure_change_hours_per_week, params.infrastructure_change_hours
    )
    if trace.ask("infrastructure_change", held, evidence):
        return _finish(trace, facts, 1, "infrastructure_change")
    health = f"; health {facts.health}" if facts.health else ""
    evidence = ("flagged at risk by the TAM" if facts.churn_risk else "not flagged") + health
    if trace.ask("churn_risk", facts.churn_risk, evidence):
        return _finish(trace, facts, 1, "churn_risk")
    started = facts.onboarding_started
    if started is None or started > facts.as_of:
        held, evidence = False, "onboarding not started"
    else:
        days = (facts.as_of - started).days
        held = days < params.onboarding_window_days
        evidence = f"onboarding started {started} ({days} days ago)"
    if trace.ask("onboarding_window", held, evidence):
        return _finish(trace, facts, 1, "onboarding_window")
    held, evidence = _exception_evidence(facts, 1)
    if trace.ask("p1_exception", held, evidence):
        return _finish(trace, facts, 1, "p1_exception")
    trace.ask("default_p2", True, "no P1 parameter holds")
    return 2, "default_p2"


# --- EMEA Enterprise --------------------------------------------------------------------


def emea_enterprise(facts: AccountFacts, params: Params, trace: _Trace) -> tuple[int, str]:
    """ "Following parameters and metrics define the prioritization" (seven of them): P1
    when any holds, else P2. "TAM to propose a priority based on the available parameters
    / Review during weekly 1:1s with the TAM Manager": an approved proposal is an
    exception and wins either way. Every parameter is asked so the trace shows them all.
    """
    e = facts.emea
    answers = (
        ("emea_org_change", e.org_change, "GitLab ownership moving within the customer"),
        ("emea_onboarding", e.onboarding, "still onboarding the majority of the user base"),
        ("emea_infrastructure_change", e.infrastructure_change, "infrastructure change"),
        ("emea_weekly_engagement", e.weekly_engagement_requested, "weekly collaboration asked"),
        ("emea_lam_seat_gap", e.lam_seat_gap, "licensed seats below LAM, growing"),
        ("emea_expansion_play", e.expansion_play, "expansion play in the success plan"),
        ("emea_tam_handover", e.tam_handover, "TAM account handover"),
    )
    decided_by = None
    for rule, held, text in answers:
        trace.ask(rule, held, text if held else "no")
        if held and decided_by is None:
            decided_by = rule
    if decided_by is not None:
        return _finish(trace, facts, 1, decided_by)
    held, evidence = _exception_evidence(facts, 1)
    if trace.ask("p1_exception", held, evidence):
        return _finish(trace, facts, 1, "p1_exception")
    trace.ask("emea_default_p2", True, "no parameter holds")
    return 2, "emea_default_p2"


# --- Commercial -------------------------------------------------------------------------


def commercial(facts: AccountFacts, params: Params, trace: _Trace) -> tuple[int, str]:
    """Commercial (NORAM, LATAM, EMEA). "For each priority level, we follow the ARR rule
    OR some combination of the other rules." Chosen reading, in order:

    1. "All new Commercial customers default to Priority 1" (onboarding started within
       `commercial_new_customer_days`).
    2. The ARR rule for P1 wins over everything: "if are a top 30 ARR account they remain
       priority 1".
    3. The P1 criteria and the TAM's qualify-up considerations: no objectives captured
       ("Priority 1 only until we have captured Objectives"), a critical project, at risk
       or in triage, up-tier within 9 months, key logo, channel initiative, negative NPS.
    4. The ARR rule for P2: "<$75k ARR" (objectives are captured by now).
    5. "Objectives only ... Stages adopted: 3 or more" -> P2.
    6. Otherwise "Not already using 2-3 stages" -> P1.
    Then the exception paths.
    """
    started = facts.onboarding_started
    if started is None or started > facts.as_of:
        held, evidence = False, "onboarding not started"
    else:
        days = (facts.as_of - started).days
        held = days < params.commercial_new_customer_days
        evidence = f"onboarding started {started} ({days} days ago)"
    if trace.ask("commercial_new_customer", held, evidence):
        return _finish(trace, facts, 1, "commercial_new_customer")

    rank = facts.arr_rank
    held = rank is not None and rank <= params.commercial_top_n
    evidence = (
        f"rank {rank} by ARR ({_money(facts.arr)})"
        if rank is not None
        else f"not ranked by ARR ({_money(facts.arr)})"
    )
    if trace.ask("commercial_arr_rank", held, evidence):
        return _finish(trace, facts, 1, "commercial_arr_rank")

    plan = facts.success_plan
    if trace.ask("commercial_no_objectives", plan == "none", f"success plan: {plan}"):
        return _finish(trace, facts, 1, "commercial_no_objectives")
    if trace.ask(
        "commercial_critical_project",
        facts.critical_project,
        "critical project in the success plan" if facts.critical_project else "no",
    ):
        return _finish(trace, facts, 1, "commercial_critical_project")

    reasons = []
    if facts.health in AT_RISK_COLOURS:
        reasons.append(f"health {facts.health}")
    if facts.in_triage:
        reasons.append("open triage issue")
    if facts.churn_risk:
        reasons.append("flagged at risk of churn")
    if trace.ask("commercial_at_risk", bool(reasons), ", ".join(reasons) or "no"):
        return _finish(trace, facts, 1, "commercial_at_risk")

    held, evidence = _uptier_within(facts, params.commercial_uptier_window_months)
    if trace.ask("commercial_qualify_up", held, evidence):
        return _finish(trace, facts, 1, "commercial_qualify_up")
    if trace.ask("commercial_key_logo", facts.key_logo, "key logo" if facts.key_logo else "no"):
        return _finish(trace, facts, 1, "commercial_key_logo")
    channel = facts.channel_engagement
    if trace.ask("commercial_channel", channel, "channel initiative" if channel else "no"):
        return _finish(trace, facts, 1, "commercial_channel")
    nps = facts.nps
    held = nps is not None and nps < 0
    if trace.ask("commercial_negative_nps", held, "no NPS" if nps is None else f"NPS {nps}"):
        return _finish(trace, facts, 1, "commercial_negative_nps")

    held = facts.arr < params.commercial_p2_arr_below
    if trace.ask("commercial_p2_low_arr", held, f"ARR {_money(facts.arr)}"):
        return _finish(trace, facts, 2, "commercial_p2_low_arr")
    stages = facts.stages_adopted
    held = stages >= params.commercial_min_stages
    source = " (from usage data)" if facts.stages_adopted_source == "usage" else ""
    evidence = f"success plan: {plan}; {stages} stages adopted{source}"
    if trace.ask("commercial_p2_objectives_and_stages", held, evidence):
        return _finish(trace, facts, 2, "commercial_p2_objectives_and_stages")
    trace.ask("commercial_low_stage_adoption", True, f"{stages} stages adopted{source}")
    return _finish(trace, facts, 1, "commercial_low_stage_adoption")


# --- Flat -------------------------------------------------------------------------------


def flat_p1(facts: AccountFacts, params: Params, trace: _Trace) -> tuple[int, str]:
    """ "All AMER CSM customers are Priority 1." Only an approved P2 exception lowers one;
    an account without a TAM is P2 (P3/P4 are kept for child and digital accounts)."""
    assigned = facts.tam_assigned
    trace.ask("flat_p1", assigned, "TAM-assigned" if assigned else "not TAM-assigned")
    if not assigned:
        return 2, "flat_p1"
    return _finish(trace, facts, 1, "flat_p1", ask_p1=False)


_MODELS = {
    "us_enterprise": us_enterprise,
    "emea_enterprise": emea_enterprise,
    "commercial": commercial,
    "flat_p1": flat_p1,
}
assert set(_MODELS) == set(MODELS)  # nosec B101 # an internal invariant, not input validation


def evaluate(facts: AccountFacts, params: Params) -> Decision:
    """The priority of one account with its trace. The model is `facts.model` when given,
    else `params.model` (the RuleSet's)."""
    model = facts.model or params.model
    if model not in _MODELS:
        raise UnknownModel(model)
    trace = _Trace(params)
    outcome = _pre_rules(facts, params, trace)
    if outcome is None:
        outcome = _MODELS[model](facts, params, trace)
    priority, decided_by = outcome
    return Decision(priority=priority, model=model, decided_by=decided_by, trace=tuple(trace.steps))
