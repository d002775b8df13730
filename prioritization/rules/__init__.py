"""The priority rules: pure Python, no Django (DESIGN.md "rules are pure").

`evaluate(facts, params) -> Decision(priority, model, decided_by, trace)`; `RULES` holds
every rule id with its question and handbook line, `FLOWS` the order each model asks them.
"""

from prioritization.rules.engine import UnknownModel, add_months, evaluate
from prioritization.rules.registry import (
    FLOWS,
    MODEL_PARAMS,
    PRE_PARAMS,
    RULES,
    RuleInfo,
    rule_name,
)
from prioritization.rules.types import (
    AT_RISK_COLOURS,
    HEALTH_COLOURS,
    LABELS,
    MODELS,
    SUCCESS_PLANS,
    AccountFacts,
    Decision,
    EmeaFacts,
    ExceptionFacts,
    Params,
    TraceStep,
)

__all__ = [
    "AT_RISK_COLOURS",
    "FLOWS",
    "HEALTH_COLOURS",
    "LABELS",
    "MODELS",
    "MODEL_PARAMS",
    "PRE_PARAMS",
    "RULES",
    "SUCCESS_PLANS",
    "AccountFacts",
    "Decision",
    "EmeaFacts",
    "ExceptionFacts",
    "Params",
    "RuleInfo",
    "TraceStep",
    "UnknownModel",
    "add_months",
    "evaluate",
    "rule_name",
]
