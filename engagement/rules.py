"""Pure rules of the engagement lifecycle: no Django import, plain data in, plain data out.

Each function quotes the handbook line it implements (tam-account-engagement.md,
tam-account-engagement-early.md, csm-account-engagement.md). The services and selectors
build the inputs from the database and store or show the results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

# --- Engagement checklists --------------------------------------------------------------


@dataclass(frozen=True)
class StepDef:
    key: str
    title: str
    who: str
    source: str
    # The TAM decides whether the step applies: it can be completed as "not needed" with
    # a note (the Commercial upgrade's customer project).
    may_be_not_needed: bool = False


# "Start a new customer engagement" (tam-account-engagement.md), plus the "Welcome to
# GitLab" call and the move to post-sales from "Where does a Technical Account Manager fit
# in?" (both pages).
NEW_CUSTOMER_STEPS: tuple[StepDef, ...] = (
    StepDef(
        "sa_create_project",
        "Create the customer project in GitLab (between steps 3 and 7 of the customer "
        "journey) and include the PSE and TAM",
        "Solutions Architect",
        "Somewhere between step 3 and step 7 of the customer journey sequence, a Solutions "
        "Architect should create a project for the customer in GitLab and include a "
        "Professional Services Engineer and Technical Account Manager",
    ),
    StepDef(
        "tam_assign",
        "Assign the TAM in the Salesforce \u201cTechnical Account Manager\u201d field",
        "Technical Account Manager",
        "After the Technical Account Manager has been aligned with the account, they will "
        "assign themselves to the \u201cTechnical Account Manager\u201d field within Salesforce.",
    ),
    StepDef(
        "confirm_template",
        "Confirm the project follows the Enterprise or Commercial Customer Success Plan "
        "Template (create it if it has not been)",
        "Technical Account Manager",
        "The Technical Account Manager confirms that a new customer project has been created "
        "based on the Enterprise or the Commercial Customer Success Plan Template. If it "
        "hasn't, they need to create it",
    ),
    StepDef(
        "please_read",
        "Follow the steps in PLEASE-READ-THESE-INSTRUCTIONS.md",
        "Technical Account Manager",
        "Follow the steps in the PLEASE-READ-THESE-INSTRUCTIONS.md file.",
    ),
    StepDef(
        "welcome_call",
        "Hold the \u201cWelcome to GitLab\u201d call (customer, SAL/AE, SA, PSE, TAM)",
        "Strategic Account Leader / Account Executive",
        'Once the customer has paid, the Strategic Account Leader will set up the "Welcome '
        'to GitLab" call along with the key GitLab employees (SAL, SA, PSE and Technical '
        "Account Manager) and the customer.",
    ),
    StepDef(
        "move_post_sales",
        "Move the project from pre-sales to the account-management group",
        "Technical Account Manager",
        "If the project was created in the pre-sales project under the `pre-sales "
        "account-management` group, then it is moved to a post-sales project under "
        "`account-management` group.",
    ),
)

# "Start a customer upgrade engagement" (tam-account-engagement.md).
UPGRADE_STEPS: tuple[StepDef, ...] = (
    StepDef(
        "tam_assign",
        "Assign the TAM in the Salesforce \u201cTechnical Account Manager\u201d field",
        "Technical Account Manager",
        "After the Technical Account Manager has been aligned with the account, they will "
        "assign themselves to the \u201cTechnical Account Manager\u201d field within Salesforce.",
    ),
    StepDef(
        "confirm_project",
        "Confirm the customer project exists (TAM-assigned segment); create it if not",
        "Technical Account Manager",
        "Provided that the customer is part of the TAM-Assigned segment, confirm that the "
        "customer project has been created previously during the customer journey sequence, "
        "and if not available create a project for the customer in GitLab",
    ),
    StepDef(
        "confirm_template",
        "Verify the project complies with the Enterprise or Commercial Customer Success "
        "Plan Template",
        "Technical Account Manager",
        "Verify that the project complies with the Enterprise or the Commercial Customer "
        "Success Plan Template.",
    ),
    StepDef(
        "please_read",
        "Follow the steps in PLEASE-READ-THESE-INSTRUCTIONS.md",
        "Technical Account Manager",
        "Follow the steps in the PLEASE-READ-THESE-INSTRUCTIONS.md file.",
    ),
)

STEPS_BY_KIND: dict[str, tuple[StepDef, ...]] = {
    "new_customer": NEW_CUSTOMER_STEPS,
    "upgrade": UPGRADE_STEPS,
}

# Commercial accounts differ in who does two steps (tam-account-engagement.md, "Where does
# a Technical Account Manager fit in?").
COMMERCIAL_STEPS: dict[str, StepDef] = {
    "sa_create_project": StepDef(
        "sa_create_project",
        "Create the customer project if it will be useful to the relationship",
        "Technical Account Manager",
        "For Commercial accounts, the Account Executive owns the pre-sales process ... Once "
        "the account becomes a paying customer, the Technical Account Manager will create a "
        "customer project if it will be useful to their relationship with the customer",
    ),
    "welcome_call": StepDef(
        "welcome_call",
        "Hold the \u201cWelcome to GitLab\u201d call (customer, AE, TAM)",
        "Account Executive",
        'the Account Executive will schedule a "Welcome to GitLab" call with the customer '
        "and the Technical Account Manager.",
    ),
}


# The Commercial variant of the upgrade checklist's project step (tam-account-engagement.md,
# Start a customer upgrade engagement): the TAM decides whether a project is worth having.
COMMERCIAL_UPGRADE_STEPS: dict[str, StepDef] = {
    "confirm_project": StepDef(
        "confirm_project",
        "Decide whether a customer project is beneficial; if so, confirm it exists or "
        "create it (otherwise complete this step as not needed, with why)",
        "Technical Account Manager",
        "For Commercial accounts, the TAM will determine if it is beneficial to have a "
        "customer project.",
        may_be_not_needed=True,
    ),
}


def steps_for(kind: str, segment: str) -> tuple[StepDef, ...]:
    """The checklist of an engagement: the handbook's steps for its kind, with the
    Commercial variants of who creates the project and who schedules the welcome call,
    and, on an upgrade, of whether a project is needed at all.

    "Somewhere between step 3 and step 7 ... a Solutions Architect should create a project
    ... This typically only applies to Enterprise accounts."; upgrade: "For Commercial
    accounts, the TAM will determine if it is beneficial to have a customer project."
    (tam-account-engagement.md)"""
    steps = STEPS_BY_KIND[kind]
    if segment != "commercial":
        return steps
    variants = {**COMMERCIAL_STEPS, **(COMMERCIAL_UPGRADE_STEPS if kind == "upgrade" else {})}
    return tuple(variants.get(step.key, step) for step in steps)


def project_suffix(salesforce_id: str) -> str:
    """A short stable suffix from the Salesforce id: 8 hex digits of its SHA-256.

    Hashed, not cut from the id: GitLab paths are case-insensitive and 15-character
    Salesforce ids differ by case alone, so a lowercased piece of the id could collide."""
    return hashlib.sha256(salesforce_id.encode()).hexdigest()[:8]


def project_path_for(name: str, salesforce_id: str) -> str:
    """The collaboration project's path: the account name as a GitLab path slug, then
    the account's `project_suffix`.

    Two accounts whose names slug alike (`Zephyr Aerospace LLC`, `ZEPHYR AEROSPACE LLC.`)
    get different paths, so neither ever finds the other's project at its own path. The
    path is derived only from the account and never changes between retries. An empty
    slug (a name of symbols only) falls back to the Salesforce id."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    return f"{slug or salesforce_id.lower()}-{project_suffix(salesforce_id)}"


def project_name_for(name: str) -> str:
    """The collaboration project's name: the account name within GitLab's rule for
    project names (letters, digits, emoji, '_', '.', '+', dashes and spaces, starting
    with a letter, digit, emoji or '_'); any other character becomes a space."""
    cleaned = re.sub(r"[^\w\-\u2010-\u2015+. ]+", " ", name)
    cleaned = re.sub(r"^[^\w]+", "", re.sub(r"\s+", " ", cleaned)).strip()
    return cleaned[:200].strip() or "Customer"


def project_alternative_name_for(name: str, salesforce_id: str) -> str:
    """The name used when another project of the group already has `project_name_for`
    (GitLab wants names unique in a group): the name and the account's suffix."""
    return f"{project_name_for(name)} {project_suffix(salesforce_id)}"


# --- Cadence and EBRs --------------------------------------------------------------------

# Documented defaults used when no rule set gives a number (tam-account-engagement.md):
# "Pr1: TAM-led onboarding, monthly cadence call (as minimum)"; "Pr2: 60 day call
# cadence, EBR, renewal touch point" (a Commercial rule set carries its own "Quarterly or
# semi-annual meetings", 90 days).
# The one cadence default: the dashboard, team view, account page and health score read it.
DEFAULT_CADENCE_DAYS: dict[int, int] = {1: 30, 2: 60}

# EBRs: the rule set's `p1/p2_ebrs_min_per_year`. Without a rule set, the Enterprise
# reading the seeded Enterprise rule sets carry too (the Priority Definitions give no
# number): one a year at P1 and P2, shown as a reading.
DEFAULT_EBRS_MIN_PER_YEAR: dict[int, int] = {1: 1, 2: 1}
DEFAULT_EBRS_READING = (
    "Portfolio's reading: the Enterprise Priority Definitions give no EBR number. "
    '"Pr2: 60 day call cadence, EBR, renewal touch point" is read as one EBR a year; a P1 '
    '("full TAM-led customer lifecycle") gets at least what a P2 gets.'
)
# EBRs are counted one way everywhere (the panel, the health signal "At least two
# successful EBRs every year"): over the last 12 months, a rolling window. "Per year" /
# "every year" is read as any 12 months: a calendar-year count would call an account that
# held its EBR in December "behind" on 2 January, and the health signal is named
# `ebrs_last_12_months` in the public API.
EBR_WINDOW_DAYS = 365


class CallOutcome(StrEnum):
    """What happened to a scheduled cadence call or EBR (`Activity.outcome`). "" is not
    recorded (an entry logged before outcomes were, or not a call)."""

    HELD = "held"
    LATE = "late"  # held, the customer came late
    MISSED = "missed"  # the customer did not show up
    RESCHEDULED = "rescheduled"  # moved ahead of time: the customer "communicates when they can't"


# The outcomes of a meeting that took place: they count as the cadence call (or EBR) held.
# A missed or rescheduled call leaves the cadence owed.
HELD_OUTCOMES: tuple[str, ...] = ("", CallOutcome.HELD, CallOutcome.LATE)


def expected_cadence_days(
    *, cadence_days: int | None, onboarding_cadence_days: int | None, onboarding: bool
) -> int | None:
    """Days between cadence calls: the priority's cadence, or the onboarding cadence while
    onboarding is not complete, whichever is sooner.

    Commercial Engagement Guidelines (tam-account-engagement.md): Priority 1 "Onboarding:
    Kick-off call + meet every 2-4 weeks"; Priority 2 "Onboarding: Kick-off call +
    digital, check-in calls every 2-4 weeks". The rule set's `onboarding_cadence_days`
    (Commercial: 28, the upper end of "2-4 weeks", Portfolio's reading). No priority
    cadence (P3/P4): none, onboarding or not."""
    if not cadence_days:
        return None
    if onboarding and onboarding_cadence_days:
        return min(cadence_days, onboarding_cadence_days)
    return cadence_days


@dataclass(frozen=True)
class CadenceStatus:
    cadence_days: int | None
    last: dt.datetime | None
    next_due: dt.datetime | None
    overdue: bool
    days_overdue: int


def cadence_status(
    *, cadence_days: int | None, last_call: dt.datetime | None, now: dt.datetime
) -> CadenceStatus:
    """Last and next cadence call and whether the call is overdue.

    "Pr1: ... monthly cadence call (as minimum)"; "Pr2: 60 day call cadence"
    (tam-account-engagement.md). The number of days comes from the rule set's engagement
    expectations. An account with an expected cadence and no call ever logged is overdue
    now (its next call is due today); one without an expected cadence (P3/P4) never is."""
    if not cadence_days:
        return CadenceStatus(None, last_call, None, False, 0)
    if last_call is None:
        return CadenceStatus(cadence_days, None, now, True, 0)
    next_due = last_call + dt.timedelta(days=cadence_days)
    overdue = now > next_due
    days_overdue = (now - next_due).days if overdue else 0
    return CadenceStatus(cadence_days, last_call, next_due, overdue, days_overdue)


def ebrs_behind(*, held: int, minimum: int | None) -> bool:
    """Fewer EBRs held in the last 12 months than the rule set's minimum.

    Commercial P1: "Executive Business Reviews: 1-2 per year" (minimum 1); P2:
    "Executive Business Reviews: TAM discretion" (no minimum) (tam-account-engagement.md)."""
    return minimum is not None and held < minimum


# --- Success plans -----------------------------------------------------------------------


class ObjectiveStatus(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class ObjectiveFacts:
    status: str
    task_count: int


FULL_PLAN_MIN_OBJECTIVES = 3


def success_plan_gap(*, priority: int | None, full_plan_required: bool, state: str) -> bool:
    """The account owes a fully green success plan and has none.

    Commercial Engagement Guidelines, Priority 1 only (tam-account-engagement.md):
    "Success Planning: Fully “green” success plan ... with at least 3 objectives". The
    Enterprise Priority Definitions ("Pr1: TAM-led onboarding, monthly cadence call (as
    minimum), full TAM-led customer lifecycle") ask no success plan, so the requirement is
    the rule set's `p1_full_success_plan_required` (on for Commercial)."""
    return priority == 1 and full_plan_required and state != "full"


def success_plan_state(objectives: list[ObjectiveFacts]) -> str:
    """The account's success-plan state: "none", "objectives" or "full".

    Commercial qualification (tam-account-engagement.md): P1 when "Success Planning:
    Unclear"; P2 when "Success Planning: Objectives only, due date (tasks, highlights,
    strategy all optional)"; and the P1 guideline "Fully “green” success plan ... with at
    least 3 objectives".

    Reading: no objectives -> "none" (unclear); a "full" plan has at least 3 objectives,
    every one green and with at least one task (a plan, not a list of wishes); any other
    plan with objectives -> "objectives"."""
    if not objectives:
        return "none"
    full = len(objectives) >= FULL_PLAN_MIN_OBJECTIVES and all(
        o.status == ObjectiveStatus.GREEN and o.task_count > 0 for o in objectives
    )
    return "full" if full else "objectives"


# --- Personas ----------------------------------------------------------------------------

PERSONAS: tuple[str, ...] = ("development_lead", "security_lead")


def missing_personas(personas_present: set[str]) -> list[str]:
    """The key personas the account has no contact for.

    "We have defined two key personas that CSMs should regularly engage with and align on
    outcomes and use cases: Development Lead ... Software Security Lead"
    (csm-account-engagement.md). Reading: an account is flagged when either persona is
    missing (a CSM should engage with both)."""
    return [p for p in PERSONAS if p not in personas_present]


# --- Customer open issues ----------------------------------------------------------------

# "Make sure you are responding in a timely manner to customer's open issues"
# (tam-account-engagement.md). The handbook gives no number; two days is our reading.
SLOW_RESPONSE_DAYS = 2


@dataclass(frozen=True)
class IssueResponse:
    awaiting_answer: bool
    waiting_since: dt.datetime
    slow: bool


def issue_response(
    *,
    created_at: dt.datetime,
    last_customer_at: dt.datetime | None,
    last_answer_at: dt.datetime | None,
    now: dt.datetime,
    slow_after_days: int = SLOW_RESPONSE_DAYS,
) -> IssueResponse:
    """Whether a customer question waits for our answer, since when, and whether that is slow.

    "Make sure you are responding in a timely manner to customer's open issues. When you
    are prompt to respond, the customer is more likely to continue using the account
    management projects" (tam-account-engagement.md).

    The question waits for an answer when nobody but the customer has written since the
    customer last wrote (the issue itself or their latest note); it is slow when it has
    waited longer than `slow_after_days`."""
    customer_spoke = max(created_at, last_customer_at or created_at)
    if last_answer_at is not None and last_answer_at >= customer_spoke:
        return IssueResponse(False, last_answer_at, False)
    slow = now - customer_spoke > dt.timedelta(days=slow_after_days)
    return IssueResponse(True, customer_spoke, slow)


# --- Disengagement -----------------------------------------------------------------------


def below_alignment_threshold(
    *, arr: float, threshold: float | None, downgrades_or_churns: bool
) -> bool:
    """ "A customer downgrades or churns and is below the TAM alignment threshold"
    (tam-account-engagement.md, Disengaging with a customer): both must hold.

    The threshold is the organisation's own setting (`TAM_ALIGNMENT_THRESHOLD_USD`; the
    handbook links its number elsewhere). Reading of "downgrades or churns": the customer
    has told us they are downgrading or cancelling (the TAM's red health signal
    `downgrading_or_cancelling`); a churn *risk* is not a downgrade."""
    return downgrades_or_churns and threshold is not None and arr < threshold
