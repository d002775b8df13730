"""Demo data of the engagement app, run by `manage.py load_demo` after the core data.

Deterministic (one seeded random.Random over accounts in Salesforce-id order) and
idempotent (an account that already has an engagement, a project, objectives or a
customer issue is left alone). Set-based: bulk_create / bulk_update only. No GitLab calls:
collaboration projects are rows pointing at an example GitLab host.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from engagement import rules
from engagement.models import (
    CollaborationProject,
    CustomerIssue,
    Engagement,
    EngagementStage,
    EngagementStep,
    ProjectStatus,
    SuccessObjective,
    SuccessTask,
)
from engagement.services.success_plan import success_plan_refresh
from portfolio.models import Account, Activity, ActivityKind
from prioritization.models import ReviewCause
from prioritization.services import priorities_reevaluate

SEED = 6
DEMO_GITLAB = "https://gitlab.example.com"

OBJECTIVES = [
    ("Move all CI pipelines from Jenkins to GitLab CI", ["Inventory pipelines", "Pilot team"]),
    ("Shift security left with SAST and dependency scanning", ["Enable SAST", "Train leads"]),
    ("Cut release lead time by 30%", ["Measure baseline", "Adopt merge trains"]),
    ("Roll out GitLab to the platform team", ["Onboard 50 users", "SSO via SAML"]),
    ("Adopt value stream analytics", ["Define stages", "Monthly review"]),
    ("Standardise on GitLab Runner autoscaling", ["Pick executor", "Load test"]),
]
QUESTIONS = [
    "How should we structure groups for 40 teams?",
    "Best practice for monorepo CI caching?",
    "Can we enforce approval rules across projects?",
    "Runner autoscaling on Kubernetes: recommended settings?",
    "How do we migrate issues from Jira?",
]


def _rng(part: str, account: Account) -> random.Random:
    """One generator per account and part: the same choices whatever else exists."""
    return random.Random(f"{SEED}:{part}:{account.salesforce_id}")  # nosec B311 # jitter and demo data, not security


def populate(*, stdout=None) -> None:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    accounts = list(
        Account.objects.filter(tam__isnull=False)
        .order_by("salesforce_id")
        .only("pk", "name", "salesforce_id", "segment", "priority", "tam_id", "customer_since")
    )
    with transaction.atomic():
        engaged = _engagements(accounts, now)
        projects = _projects(engaged, now)
        _customer_issues(projects, now)
        planned = _success_plans(accounts, now)
        # Every TAM account, not just those given objectives: the others' generated state
        # must become "none" too, or the panel and the priority would disagree.
        changed = success_plan_refresh(account_ids=[a.pk for a in accounts])
        reevaluated = _reevaluate_priorities(changed)
    if stdout is not None:
        stdout.write(
            f"engagement demo: {len(engaged)} engagements, {len(projects)} projects, "
            f"{len(planned)} success plans ({len(changed)} states changed; "
            f"{reevaluated} priorities re-evaluated)"
        )


def _reevaluate_priorities(account_ids: list[int]) -> int:
    """The success-plan state feeds the Commercial rules ("Priority 1 only until we have
    captured Objectives"): re-evaluate the accounts whose state the demo changed, so the
    demo's priorities agree with its success plans."""
    if not account_ids:
        return 0
    return priorities_reevaluate(cause=ReviewCause.MANUAL, account_ids=account_ids).evaluated


def _engagements(accounts: list[Account], now: dt.datetime) -> list[Account]:
    have = set(Engagement.objects.values_list("account_id", flat=True))
    engagements = []
    for account in accounts:
        rng = _rng("engagement", account)
        if account.pk in have or rng.random() >= 0.3:
            continue
        recent = account.customer_since and (now.date() - account.customer_since).days < 365
        kind = "new_customer" if recent or rng.random() < 0.5 else "upgrade"
        started = now - dt.timedelta(days=rng.randint(5, 200))
        welcome = (
            started + dt.timedelta(days=rng.randint(3, 20)) if kind == "new_customer" else None
        )
        if welcome and welcome > now:
            welcome = None
        engagements.append(
            Engagement(
                account=account,
                kind=kind,
                started_by_id=account.tam_id,
                started_at=started,
                welcome_call_at=welcome,
                stage=EngagementStage.POST_SALES
                if welcome or kind == "upgrade"
                else EngagementStage.PRE_SALES,
            )
        )
    Engagement.objects.bulk_create(engagements)
    steps, meetings = [], []
    for engagement in engagements:
        rng = _rng("steps", engagement.account)
        defs = rules.steps_for(engagement.kind, engagement.account.segment)
        done_upto = rng.randint(1, len(defs))
        for i, step in enumerate(defs, start=1):
            done = i <= done_upto or (step.key == "welcome_call" and engagement.welcome_call_at)
            steps.append(
                EngagementStep(
                    engagement=engagement,
                    key=step.key,
                    position=i,
                    title=step.title,
                    who=step.who,
                    done_at=engagement.started_at + dt.timedelta(days=i) if done else None,
                    done_by_id=engagement.account.tam_id if done else None,
                )
            )
        if engagement.welcome_call_at:
            meetings.append(
                Activity(
                    account=engagement.account,
                    kind=ActivityKind.MEETING,
                    occurred_at=engagement.welcome_call_at,
                    subject="Welcome to GitLab call",
                    user_id=engagement.account.tam_id,
                )
            )
            meetings.append(
                Activity(
                    account=engagement.account,
                    kind=ActivityKind.CADENCE_CALL,
                    occurred_at=engagement.welcome_call_at + dt.timedelta(days=14),
                    subject="Cadence call: onboarding check-in",
                    user_id=engagement.account.tam_id,
                )
            )
    EngagementStep.objects.bulk_create(steps)
    Activity.objects.bulk_create([m for m in meetings if m.occurred_at <= now])
    return [e.account for e in engagements]


def _projects(engaged: list[Account], now: dt.datetime) -> list[CollaborationProject]:
    have = set(CollaborationProject.objects.values_list("account_id", flat=True))
    projects = []
    for account in engaged:
        rng = _rng("project", account)
        if account.pk in have or rng.random() < 0.3:
            continue
        path = rules.project_path_for(account.name, account.salesforce_id)
        post = rng.random() < 0.7
        group = "account-management" if post else "account-management/pre-sales"
        url = f"{DEMO_GITLAB}/gitlab-com/{group}/{path}"
        created = now - dt.timedelta(days=rng.randint(10, 300))
        projects.append(
            CollaborationProject(
                account=account,
                template="commercial" if account.segment == "commercial" else "enterprise",
                path=path,
                status=ProjectStatus.TRANSFERRED if post else ProjectStatus.CREATED,
                gitlab_id=100000 + account.pk,
                path_with_namespace=f"gitlab-com/{group}/{path}",
                web_url=url,
                welcome_issue_iid=1,
                welcome_issue_url=f"{url}/-/issues/1",
                requested_by_id=account.tam_id,
                requested_at=created,
                created_at=created,
                transferred_at=created + dt.timedelta(days=20) if post else None,
                issues_synced_at=now,
            )
        )
        account.collaboration_project_url = url
    CollaborationProject.objects.bulk_create(projects)
    Account.objects.bulk_update([p.account for p in projects], ["collaboration_project_url"])
    return projects


def _customer_issues(projects: list[CollaborationProject], now: dt.datetime) -> None:
    rows = []
    for project in projects:
        rng = _rng("issues", project.account)
        for iid in range(2, 2 + rng.randint(0, 3)):
            opened = now - dt.timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 23))
            answered = rng.random() < 0.6
            answer = opened + dt.timedelta(hours=rng.randint(2, 90)) if answered else None
            if answer and answer > now:
                answer = None
            rows.append(
                CustomerIssue(
                    account_id=project.account_id,
                    iid=iid,
                    title=rng.choice(QUESTIONS),
                    web_url=f"{project.web_url}/-/issues/{iid}",
                    author="customer.engineer",
                    opened_at=opened,
                    last_answer_at=answer,
                    awaiting_answer=answer is None,
                    waiting_since=answer or opened,
                    notes_count=1 if answer else 0,
                    synced_at=now,
                )
            )
    CustomerIssue.objects.bulk_create(rows, ignore_conflicts=True)


def _success_plans(accounts: list[Account], now: dt.datetime) -> list[int]:
    have = set(SuccessObjective.objects.values_list("account_id", flat=True))
    objectives, tasks_for = [], []
    for account in accounts:
        rng = _rng("plan", account)
        if account.pk in have or rng.random() < 0.35:
            continue
        count = rng.choice([1, 2, 3, 3, 4]) if account.priority == 1 else rng.choice([1, 2, 3])
        mostly_green = rng.random() < 0.5
        for title, tasks in rng.sample(OBJECTIVES, count):
            status = (
                "green" if mostly_green or rng.random() < 0.5 else rng.choice(["yellow", "red"])
            )
            objective = SuccessObjective(
                account=account,
                title=title,
                status=status,
                due_date=(now + dt.timedelta(days=rng.randint(30, 270))).date(),
                created_by_id=account.tam_id,
                created_at=now - dt.timedelta(days=rng.randint(10, 200)),
            )
            objectives.append(objective)
            with_tasks = account.priority == 1 and (mostly_green or rng.random() < 0.5)
            tasks_for.append((objective, tasks if with_tasks else []))
    SuccessObjective.objects.bulk_create(objectives)
    SuccessTask.objects.bulk_create(
        SuccessTask(
            objective=objective,
            title=title,
            done_at=now - dt.timedelta(days=3) if i == 0 else None,
        )
        for objective, titles in tasks_for
        for i, title in enumerate(titles)
    )
    return sorted({o.account_id for o in objectives})
