"""Triage issues: opened with the handbook's template fields and labels, moved on the
board, reviewed, edited, updated weekly, their team; the Customer ER call; the daily
refresh from the accounts. Every change is mirrored to GitLab by the task
`triage.issue_mirror`, enqueued on commit (`triage.mirror`)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from integrations.enqueue import enqueue_on_commit
from portfolio.models import Account, Health, Team
from triage import health, mirror, selectors, tasks
from triage import labels as triage_labels
from triage.models import (
    AssessmentSource,
    CustomerERCall,
    EventKind,
    EventSource,
    IssueStatus,
    TriageEvent,
    TriageIssue,
    TriageRole,
    TriageTeamMember,
    TriageUpdate,
)
from triage.services import assessments

BATCH_SIZE = 500
AT_RISK = health.AT_RISK
HEALTHY = frozenset({Health.GREEN.value, Health.YELLOW.value})


def salesforce_url(account: Account) -> str:
    base = settings.SALESFORCE_INSTANCE_URL or "https://login.salesforce.com"
    return f"{base.rstrip('/')}/{account.salesforce_id}"


def _milestone(renewal_date: dt.date | None) -> str:
    if renewal_date is None:
        return ""
    return triage_labels.fiscal_quarter(
        renewal_date, fiscal_year_start_month=settings.FISCAL_YEAR_START_MONTH
    )


def _mirror_on_commit(issue: TriageIssue) -> None:
    """Enqueue the GitLab push after commit. With GitLab off nothing is enqueued: the
    issue stays `needs_push` and the first `sync_gitlab` after GitLab is set up pushes it."""
    if mirror.mirror_enabled() is not None:
        return
    enqueue_on_commit(tasks.triage_issue_push, issue.pk)


def _event(
    issue: TriageIssue,
    kind: str,
    *,
    source: str,
    actor: User | None = None,
    from_colour: str = "",
    to_colour: str = "",
    reason: str = "",
) -> TriageEvent:
    return TriageEvent.objects.create(
        issue=issue,
        kind=kind,
        source=source,
        actor=actor if actor and actor.is_authenticated else None,
        from_colour=from_colour,
        to_colour=to_colour,
        reason=reason,
        created_at=timezone.now(),
    )


def _require_churn_class(colour: str, churn_class: str) -> None:
    if colour == Health.RED and not churn_class:
        raise ValidationError(
            {
                "churn_class": (
                    "A red account needs a churn class label (E&A, E&U, U&A or U&U): "
                    "see Churn Classification."
                )
            }
        )


@transaction.atomic
def triage_issue_open(
    *,
    account: Account,
    user: User | None,
    colour: str,
    reason: str = "",
    churn_class: str = "",
    due_date: dt.date | None = None,
    automatic: bool = False,
) -> TriageIssue:
    """Open the account's triage issue with the handbook's template fields and labels.

    "If you are worried about a Green or a Yellow account and think it might be Amber,
    create an issue in the project". The triage team starts with the account owner, the
    TAM and the TAM's leader ("You must ensure that your Leader and/or the Customer
    Success Director is included in this issue"). A TAM opening a red issue must give
    the churn class; an issue opened automatically when the account turned red is
    flagged until the TAM classifies it."""
    if colour not in Health.values:
        raise ValidationError({"colour": f"Choose one of {', '.join(Health.values)}."})
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        raise ValidationError({"churn_class": "Not a churn class."})
    if not automatic:
        _require_churn_class(colour, churn_class)
    if TriageIssue.objects.filter(account=account, status=IssueStatus.OPEN).exists():
        raise ValidationError(f"{account.name} already has an open triage issue.")
    now = timezone.now()
    actor = user if user and user.is_authenticated else None
    issue = TriageIssue.objects.create(
        account=account,
        title=f"{account.name}",
        colour=colour,
        churn_class=churn_class,
        region=account.region_id or "",
        salesforce_url=salesforce_url(account),
        success_plan_url=account.collaboration_project_url,
        renewal_date=account.renewal_date,
        milestone=_milestone(account.renewal_date),
        health_reason=reason.strip(),
        due_date=due_date,
        opened_by=actor,
        opened_at=now,
    )
    _default_team(issue, account)
    _event(
        issue,
        EventKind.OPENED,
        source=EventSource.AUTOMATIC if automatic else EventSource.PORTFOLIO,
        actor=actor,
        to_colour=colour,
        reason=reason.strip(),
    )
    _mirror_on_commit(issue)
    return issue


def _default_team(issue: TriageIssue, account: Account) -> None:
    members = []
    owner = account.owner  # no query when there is none
    if owner is not None:
        members.append(
            TriageTeamMember(
                issue=issue, role=TriageRole.ACCOUNT_OWNER, user=owner.user, name=owner.name
            )
        )
    if account.tam_id:
        members.append(TriageTeamMember(issue=issue, role=TriageRole.TAM, user_id=account.tam_id))
        leaders = (
            Team.objects.filter(tams=account.tam_id)
            .order_by("pk")
            .values_list("manager_id", flat=True)
            .distinct()
        )
        for manager_id in leaders:
            members.append(
                TriageTeamMember(issue=issue, role=TriageRole.TAM_LEADER, user_id=manager_id)
            )
    TriageTeamMember.objects.bulk_create(members, ignore_conflicts=True)


def triage_issue_recolour(
    issue: TriageIssue,
    *,
    to: str,
    actor: User | None,
    reason: str,
    source: str,
) -> TriageIssue:
    """Change the issue's colour label, recording why; close it when the account moved
    from Amber or Red to Green or Yellow: "close it AND add the label so we can see the
    history in the issue"."""
    old = issue.colour
    if old == to:
        return issue
    issue.colour = to
    issue.needs_push = True
    fields = ["colour", "needs_push", "updated_at"]
    _event(
        issue,
        EventKind.MOVED,
        source=source,
        actor=actor,
        from_colour=old,
        to_colour=to,
        reason=reason,
    )
    if old in AT_RISK and to in HEALTHY:
        issue.status = IssueStatus.CLOSED
        issue.closed_at = timezone.now()
        fields += ["status", "closed_at"]
        _event(
            issue,
            EventKind.CLOSED,
            source=source,
            actor=actor,
            from_colour=old,
            to_colour=to,
            reason=f"Back to {to}: closed with the ~{triage_labels.COLOUR_LABELS[to]} label.",
        )
    issue.save(update_fields=fields)
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_issue_move(
    *,
    issue: TriageIssue,
    user: User,
    colour: str,
    reason: str,
    churn_class: str = "",
) -> TriageIssue:
    """Move a card on the board: a new colour for the issue and the account, with the
    reason recorded ("Once you have reviewed the account's health with the team on the
    call, you can assign it to the appropriate health score both on the issue and in
    Salesforce"). Moving a red/amber card to green/yellow closes the issue."""
    errors: dict[str, str] = {}
    if colour not in Health.values:
        errors["colour"] = f"Choose one of {', '.join(Health.values)}."
    if not reason.strip():
        errors["reason"] = "Say why the card moves."
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        errors["churn_class"] = "Not a churn class."
    if errors:
        raise ValidationError(errors)
    issue = TriageIssue.objects.select_for_update().select_related("account").get(pk=issue.pk)
    if not issue.is_open:
        raise ValidationError("This issue is closed.")
    _require_churn_class(colour, churn_class or issue.churn_class)
    if churn_class and churn_class != issue.churn_class:
        issue.churn_class = churn_class
        issue.needs_push = True
        issue.save(update_fields=["churn_class", "needs_push", "updated_at"])
    triage_issue_recolour(
        issue, to=colour, actor=user, reason=reason.strip(), source=EventSource.PORTFOLIO
    )
    account = issue.account
    if account.health != colour:
        assessments.health_colour_set(
            account=account,
            user=user,
            colour=colour,
            reason=reason.strip(),
            source=AssessmentSource.BOARD,
        )
    return issue


@transaction.atomic
def triage_issue_review(*, issue: TriageIssue, user: User) -> TriageIssue:
    """ "Once you have reviewed the issue, remove the ~New label." """
    if not issue.is_new:
        return issue
    issue.is_new = False
    issue.needs_push = True
    issue.save(update_fields=["is_new", "needs_push", "updated_at"])
    _event(issue, EventKind.REVIEWED, source=EventSource.PORTFOLIO, actor=user)
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_issue_edit(
    *,
    issue: TriageIssue,
    user: User,
    churn_class: str,
    due_date: dt.date | None,
    health_reason: str,
    success_plan_url: str,
) -> TriageIssue:
    """Edit the template fields, churn class and due date ("The due date field is managed
    by the ... Technical Account Manager as a method for tracking next steps")."""
    if churn_class and churn_class not in triage_labels.CHURN_CLASSES:
        raise ValidationError({"churn_class": "Not a churn class."})
    if issue.is_open:
        _require_churn_class(issue.colour, churn_class)
    issue.churn_class = churn_class
    issue.due_date = due_date
    issue.health_reason = health_reason.strip()
    issue.success_plan_url = success_plan_url.strip()
    issue.needs_push = True
    issue.save(
        update_fields=[
            "churn_class",
            "due_date",
            "health_reason",
            "success_plan_url",
            "needs_push",
            "updated_at",
        ]
    )
    _mirror_on_commit(issue)
    return issue


@transaction.atomic
def triage_update_add(*, issue: TriageIssue, user: User, body: str) -> TriageUpdate:
    """ "Make sure you keep your issues updated every week with the steps you have taken to
    try and pull the account back into a healthy state." Mirrored as a GitLab note."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Say what was done."})
    update = TriageUpdate.objects.create(
        issue=issue, author=user, created_at=timezone.now(), body=body
    )
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True, updated_at=timezone.now())
    _mirror_on_commit(issue)
    return update


@transaction.atomic
def triage_team_member_add(
    *,
    issue: TriageIssue,
    role: str,
    user: User | None = None,
    name: str = "",
) -> TriageTeamMember:
    if role not in TriageRole.values:
        raise ValidationError({"role": "Not a triage team role."})
    if user is None and not name.strip():
        raise ValidationError({"name": "Pick a user or type a name."})
    if user is not None and issue.team.filter(role=role, user=user).exists():
        raise ValidationError({"user": "Already on the team in this role."})
    member = TriageTeamMember.objects.create(issue=issue, role=role, user=user, name=name.strip())
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=True)
    _mirror_on_commit(issue)
    return member


@transaction.atomic
def customer_er_call_record(
    *, user: User, held_at: dt.datetime | None = None, notes: str = ""
) -> CustomerERCall:
    """Record that the weekly Customer ER call was held (the agenda's "since" point)."""
    return CustomerERCall.objects.create(
        held_at=held_at or timezone.now(), recorded_by=user, notes=notes.strip()
    )


def triage_issues_refresh_from_accounts() -> int:
    """Keep the template fields of open issues in step with their accounts (Salesforce):
    contract renewal date (and so the milestone) and region label. Set-based; changed
    issues are marked for the GitLab mirror. Returns how many changed."""
    stale = list(
        TriageIssue.objects.filter(status=IssueStatus.OPEN)
        .filter(
            # Not `~Q(renewal_date=F(...))`: Django makes that true when both are NULL,
            # which re-pushed every issue of an account without a renewal date.
            Q(renewal_date__lt=F("account__renewal_date"))
            | Q(renewal_date__gt=F("account__renewal_date"))
            | Q(renewal_date__isnull=True, account__renewal_date__isnull=False)
            | Q(renewal_date__isnull=False, account__renewal_date__isnull=True)
            | ~Q(region=F("account__region_id"))
        )
        .select_related("account")
    )
    for issue in stale:
        issue.renewal_date = issue.account.renewal_date
        issue.milestone = _milestone(issue.renewal_date)
        issue.region = issue.account.region_id or ""
        issue.needs_push = True
    TriageIssue.objects.bulk_update(
        stale, ["renewal_date", "milestone", "region", "needs_push"], batch_size=BATCH_SIZE
    )
    return len(stale)


def triage_issues_open_for_red() -> int:
    """Open the issue of every red account that has none (the daily run's safety net for
    colours that arrived from Salesforce rather than through Portfolio): "When a customer
    falls into Red, immediately create an issue". Returns how many were opened."""
    open_issue = TriageIssue.objects.filter(account=OuterRef("pk"), status=IssueStatus.OPEN)
    missing = (
        Account.objects.filter(health=Health.RED)
        .filter(~Exists(open_issue))
        .select_related("owner")
        .order_by("pk")
    )
    opened = 0
    for account in missing:
        with transaction.atomic():
            triage_issue_open(
                account=account,
                user=None,
                colour=Health.RED,
                reason=selectors.health_reasons_text(account) or "Red in Salesforce.",
                automatic=True,
            )
        opened += 1
    return opened
