"""Every rule id with its question and the handbook line it implements, in one place.

The account page draws the US flowchart from `FLOWS["us_enterprise"]`; docs/rules.md and
the trace use the same questions. Questions are templates over the `Params` fields so the
wording follows the thresholds an admin set ("... in the next 6 months?").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from prioritization.rules.types import Params

TAM_PAGE = "tam-account-engagement.md"
CSM_PAGE = "csm-account-engagement.md"


@lru_cache(maxsize=4096)
def _question(template: str, params: Params) -> str:
    # Cached: a quarterly review asks the same few dozen questions 100,000 times.
    return template.format(**asdict(params))


@dataclass(frozen=True)
class RuleInfo:
    id: str
    group: str  # "pre", a model id, or "exception"
    question: str  # a template over Params fields
    outcome: int  # the priority when the answer is yes
    source: str  # handbook page and section
    quote: str  # the handbook line
    # (a boolean Params field, the question asked instead when it is on): a switch that
    # changes what the rule asks, not only a number in it.
    question_if: tuple[str, str] | None = None
    # What people read where the rule id used to show ("Decided by ...", change lists):
    # no numbers in it, so it is true of every version of the rule set.
    name: str = ""

    def question_for(self, params: Params) -> str:
        if self.question_if is not None and getattr(params, self.question_if[0]):
            return _question(self.question_if[1], params)
        return _question(self.question, params)


_RULES: tuple[RuleInfo, ...] = (
    # --- Common pre-rules -------------------------------------------------------------
    RuleInfo(
        "unmanaged_child",
        "pre",
        "Unmanaged child account?",
        3,
        f"{TAM_PAGE} · Customer Prioritization",
        "Pr3 is solely for unmanaged child accounts",
        name="Unmanaged child account",
    ),
    RuleInfo(
        "digital_only",
        "pre",
        "Digital-only customer without a TAM?",
        4,
        f"{TAM_PAGE} · Customer Prioritization",
        "Pr4 is only for our digital customers and not for the TAM-assigned segment, with the "
        "exception of the Public Sector that is trialing a TAM-assigned digital customer",
        question_if=(
            "digital_tam_trial",
            "Digital-only customer (TAM-assigned ones too: this segment trials TAM-assigned "
            "digital customers)?",
        ),
        name="Digital-only customer",
    ),
    RuleInfo(
        "onboarding_incomplete",
        "pre",
        "TAM-assigned customer whose onboarding enablement is not complete?",
        1,
        f"{TAM_PAGE} · Customer Prioritization",
        "A new TAM-assigned customer coming on to GitLab will default to Pr1 until their "
        "onboarding enablement is complete.",
        name="Onboarding not complete",
    ),
    # --- US Enterprise flowchart --------------------------------------------------------
    RuleInfo(
        "uptier_opportunity",
        "us_enterprise",
        "Open up-tier opportunity closing in the next {uptier_window_months} months?",
        1,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "upgrade[Open up-tier opp closing in next 6 months]-- Yes -->p1",
        name="Up-tier opportunity closing soon",
    ),
    RuleInfo(
        "stage_adoption",
        "us_enterprise",
        "Stage adoption this quarter requiring > {stage_adoption_hours:g} h of TAM time per week?",
        1,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "stage[Stage adoption this quarter requiring >2hrs TAM time per week]-- Yes -->p1",
        name="Stage adoption needing TAM time",
    ),
    RuleInfo(
        "infrastructure_change",
        "us_enterprise",
        "Infrastructure change this quarter requiring > {infrastructure_change_hours:g} h of "
        "TAM time per week?",
        1,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "infra[Infra change this quarter requiring >2hrs TAM time per week]-- Yes -->p1",
        name="Infrastructure change needing TAM time",
    ),
    RuleInfo(
        "churn_risk",
        "us_enterprise",
        "At risk of contraction or churn?",
        1,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "churnrisk[At risk of contraction or churn]-- Yes -->p1",
        name="At risk of contraction or churn",
    ),
    RuleInfo(
        "onboarding_window",
        "us_enterprise",
        "Within the first {onboarding_window_days} days of onboarding?",
        1,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "onboarding[First 30-45 days of onboarding]-- Yes -->p1",
        name="First days of onboarding",
    ),
    RuleInfo(
        "p1_exception",
        "exception",
        "Approved P1 exception?",
        1,
        f"{TAM_PAGE} · US Enterprise · Priority exceptions",
        'p1exception["P1 exception*"]-- Yes -->p1 / "There are occasions that warrant a '
        'customer to be prioritized differently than the model indicates."',
        name="Approved P1 exception",
    ),
    RuleInfo(
        "p2_exception",
        "exception",
        "Approved P2 exception?",
        2,
        f"{TAM_PAGE} · US Enterprise · Priority exceptions",
        'p1-.->p2exception; p2exception["P2 exception*"]-- Yes -->p2',
        name="Approved P2 exception",
    ),
    RuleInfo(
        "default_p2",
        "us_enterprise",
        "None of the P1 parameters holds: Priority 2?",
        2,
        f"{TAM_PAGE} · US Enterprise · Prioritization model",
        "p1exception-- No -->p2",
        name="No P1 parameter holds",
    ),
    # --- EMEA Enterprise ------------------------------------------------------------------
    RuleInfo(
        "emea_org_change",
        "emea_enterprise",
        "Organizational change within the customer?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "Organizational change within the customer | GitLab ownership is moving to another "
        "department within the customer organization",
        name="Organizational change at the customer",
    ),
    RuleInfo(
        "emea_onboarding",
        "emea_enterprise",
        "Customer lifecycle stage: still onboarding the majority of the user base?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "Customer lifecycle stage (Gainsight) | Customer is still onboarding majority of the "
        "user base",
        name="Still onboarding most users",
    ),
    RuleInfo(
        "emea_infrastructure_change",
        "emea_enterprise",
        "Current/upcoming infrastructure change?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "Current/upcoming infrastructure change | Actively working with the customer on "
        "changing the or implementing GitLab including migrations",
        name="Infrastructure change",
    ),
    RuleInfo(
        "emea_weekly_engagement",
        "emea_enterprise",
        "Customer expressed the wish to collaborate on a weekly base?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "Customer engagement level | Customer expressed the wish to collaborate on a weekly base",
        name="Weekly collaboration requested",
    ),
    RuleInfo(
        "emea_lam_seat_gap",
        "emea_enterprise",
        "Increasing seats to close the gap between licensed users and LAM?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "LAM | Increasing seats to close gap between licenced users and LAM",
        name="Closing the LAM seat gap",
    ),
    RuleInfo(
        "emea_expansion_play",
        "emea_enterprise",
        "Stage adoption or expansion play as part of success planning?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "Expansion plays | Stage adoption or expansion plays as part of success planning",
        name="Expansion play",
    ),
    RuleInfo(
        "emea_tam_handover",
        "emea_enterprise",
        "GitLab organizational change: TAM account handover?",
        1,
        f"{TAM_PAGE} · EMEA Enterprise · Parameters",
        "GitLab organizational changes | TAM account handover",
        name="TAM account handover",
    ),
    RuleInfo(
        "emea_default_p2",
        "emea_enterprise",
        "None of the parameters holds: Priority 2?",
        2,
        f"{TAM_PAGE} · EMEA Enterprise · Guidance",
        "Each TAM should aim to have roughly 5 to 8 customers as Priority 1, and the rest as "
        "Priority 2.",
        name="No parameter holds",
    ),
    # --- Commercial ---------------------------------------------------------------------
    RuleInfo(
        "commercial_new_customer",
        "commercial",
        "New Commercial customer (onboarding started in the last "
        "{commercial_new_customer_days} days)?",
        1,
        f"{TAM_PAGE} · Commercial · Determining priority",
        "All new Commercial customers default to `Priority 1` to start their engagement.",
        name="New Commercial customer",
    ),
    RuleInfo(
        "commercial_arr_rank",
        "commercial",
        "Top {commercial_top_n} account by ARR?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "ARR: (Top 30 account by ARR) ... if are a top 30 ARR account they remain priority 1",
        name="Top account by ARR",
    ),
    RuleInfo(
        "commercial_no_objectives",
        "commercial",
        "Success planning unclear (no objectives captured yet)?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Success Planning: Unclear, or includes a critical project / we will mark them "
        "`Priority 1` only until we have captured Objectives",
        name="No objectives captured yet",
    ),
    RuleInfo(
        "commercial_critical_project",
        "commercial",
        "Success plan includes a critical project?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Success Planning: Unclear, or includes a critical project",
        name="Critical project",
    ),
    RuleInfo(
        "commercial_at_risk",
        "commercial",
        "Account at-risk or in triage?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Account at-risk or in triage",
        name="At risk or in triage",
    ),
    RuleInfo(
        "commercial_qualify_up",
        "commercial",
        "Up-tier opportunity identified with a timeline of {commercial_uptier_window_months} "
        "months or less?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Uptier opportunity identified w/ timeline (prefer 9 months or less)",
        name="Up-tier opportunity (qualify-up)",
    ),
    RuleInfo(
        "commercial_key_logo",
        "commercial",
        "Key logo or case study agreement?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Key logo or case study agreement",
        name="Key logo or case study",
    ),
    RuleInfo(
        "commercial_channel",
        "commercial",
        "Possible channel engagement or initiative affecting multiple end customers?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Possible channel engagement or initiatives affecting multiple end customers",
        name="Channel initiative",
    ),
    RuleInfo(
        "commercial_negative_nps",
        "commercial",
        "Negative NPS?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "At-risk triage meeting determines the customer needs more attention (including "
        "negative NPS)",
        name="Negative NPS",
    ),
    RuleInfo(
        "commercial_p2_low_arr",
        "commercial",
        "ARR below {commercial_p2_arr_below:,.0f} USD (objectives captured)?",
        2,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Priority 2 - ARR: <$75k ARR, OR",
        name="ARR below the P2 line",
    ),
    RuleInfo(
        "commercial_p2_objectives_and_stages",
        "commercial",
        "Objectives captured and {commercial_min_stages} or more stages adopted?",
        2,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Priority 2 - Success Planning: Objectives only, due date ... Stages adopted: 3 or more",
        name="Objectives captured and stages adopted",
    ),
    RuleInfo(
        "commercial_low_stage_adoption",
        "commercial",
        "Fewer than {commercial_min_stages} stages adopted?",
        1,
        f"{TAM_PAGE} · Commercial · Qualification Criteria",
        "Priority 1 - Stages adopted: Not already using 2-3 stages",
        name="Few stages adopted",
    ),
    # --- Flat ---------------------------------------------------------------------------
    RuleInfo(
        "flat_p1",
        "flat_p1",
        "TAM-assigned customer (every one is Priority 1)?",
        1,
        f"{CSM_PAGE} · Customer Prioritization",
        "All AMER CSM customers are Priority 1.",
        name="Every TAM-assigned customer is P1",
    ),
)

RULES: dict[str, RuleInfo] = {rule.id: rule for rule in _RULES}


def rule_name(rule_id: str) -> str:
    """The rule's name for people; an id no longer in the registry (a decision stored by
    an older release) is shown as it is rather than failing the page."""
    rule = RULES.get(rule_id)
    return rule.name if rule is not None else rule_id


# The order each model asks its questions (after the pre-rules).
FLOWS: dict[str, tuple[str, ...]] = {
    "pre": ("unmanaged_child", "digital_only", "onboarding_incomplete"),
    "us_enterprise": (
        "uptier_opportunity",
        "stage_adoption",
        "infrastructure_change",
        "churn_risk",
        "onboarding_window",
        "p1_exception",
        "default_p2",
        "p2_exception",
    ),
    "emea_enterprise": (
        "emea_org_change",
        "emea_onboarding",
        "emea_infrastructure_change",
        "emea_weekly_engagement",
        "emea_lam_seat_gap",
        "emea_expansion_play",
        "emea_tam_handover",
        "p1_exception",
        "emea_default_p2",
        "p2_exception",
    ),
    "commercial": (
        "commercial_new_customer",
        "commercial_arr_rank",
        "commercial_no_objectives",
        "commercial_critical_project",
        "commercial_at_risk",
        "commercial_qualify_up",
        "commercial_key_logo",
        "commercial_channel",
        "commercial_negative_nps",
        "commercial_p2_low_arr",
        "commercial_p2_objectives_and_stages",
        "commercial_low_stage_adoption",
        "p1_exception",
        "p2_exception",
    ),
    "flat_p1": ("flat_p1", "p2_exception"),
}

# The `Params` fields each model reads (besides `model`): the pre-rules' for every model,
# then its own. The admin shows a rule set only these (an edit of another would move no
# account); tests/unit/test_priority_boundaries.py checks that no other field changes a
# model's answers.
PRE_PARAMS: tuple[str, ...] = ("onboarding_max_days", "digital_tam_trial")
MODEL_PARAMS: dict[str, tuple[str, ...]] = {
    "us_enterprise": PRE_PARAMS
    + (
        "uptier_window_months",
        "stage_adoption_hours",
        "infrastructure_change_hours",
        "onboarding_window_days",
    ),
    "emea_enterprise": PRE_PARAMS,
    "commercial": PRE_PARAMS
    + (
        "commercial_new_customer_days",
        "commercial_top_n",
        "commercial_p2_arr_below",
        "commercial_min_stages",
        "commercial_uptier_window_months",
    ),
    "flat_p1": PRE_PARAMS,
}
