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
# semi-annual meetings", 90 days); P1 "Executive Business Reviews: 1-2 per year".
# The one cadence default: the dashboard, team view, account page and health score read it.
DEFAULT_CADENCE_DAYS: dict[int, int] = {1: 30, 2: 60}
DEFAULT_EBRS_PER_YEAR: dict[int, str] = {1: "1-2", 2: "TAM discretion"}


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


def ebr_target_min(ebrs_per_year: str) -> int | None:
    """The minimum EBRs a year from the rule set's text ("1-2" -> 1, "1" -> 1,
    "TAM discretion" -> None).

    Commercial P1: "Executive Business Reviews: 1-2 per year"; P2: "Executive Business
    Reviews: TAM discretion" (tam-account-engagement.md)."""
    match = re.match(r"\s*(\d+)", ebrs_per_year or "")
    return int(match.group(1)) if match else None


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


def below_alignment_threshold(*, arr: float, threshold: float | None) -> bool:
    """ "A customer downgrades or churns and is below the TAM alignment threshold"
    (tam-account-engagement.md, Disengaging with a customer)."""
    return threshold is not None and arr < threshold
