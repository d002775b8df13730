"""Writes of the engagement lifecycle (STYLE.md: `<entity>_<verb>`, keyword-only, typed).

Outward steps (GitLab) run in Celery tasks enqueued with `transaction.on_commit`; the
services they call are safe to run twice. The TAM assignment and the disengagement write
the TAM back to Salesforce through `portfolio.services.salesforce_writeback_enqueue`.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from engagement import rules
from engagement.models import (
    CollaborationProject,
    CustomerIssue,
    Disengagement,
    EGroupBrief,
    EmailTemplate,
    EmailTemplateVersion,
    Engagement,
    EngagementKind,
    EngagementStage,
    EngagementStep,
    OutboundEmail,
    OutboundEmailStatus,
    ProjectStatus,
    ProjectTemplate,
    SuccessObjective,
    SuccessTask,
)
from integrations import gitlab as gl
from integrations.enqueue import enqueue_on_commit
from portfolio.models import (
    Account,
    Activity,
    ActivityKind,
    CallOutcome,
    Contact,
    KeyPersona,
    Opportunity,
    Persona,
    WritebackOrigin,
)
from portfolio.services import activity_log, salesforce_writeback_enqueue

logger = logging.getLogger(__name__)


def _who(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else "Portfolio"


WELCOME_ISSUE_TITLE = "Welcome to GitLab"
WELCOME_ISSUE_DESCRIPTION = (
    'The "Welcome to GitLab" call will introduce the customer to the Technical Account '
    "Manager and begin the handover process. The Technical Account Manager will then lead "
    "the rest of the call and own the customer project.\n\n"
    "- [ ] Schedule the call with the customer, the SAL/AE, SA, PSE and TAM\n"
    "- [ ] Introduce the Technical Account Manager\n"
    "- [ ] Review the PLEASE-READ-THESE-INSTRUCTIONS.md steps together\n"
)


# --- Engagements and their checklists -----------------------------------------------------


@transaction.atomic
def engagement_start(*, account: Account, kind: str, user: AbstractBaseUser | None) -> Engagement:
    """Open a new-customer or upgrade engagement with the handbook's checklist.

    Steps that are already true are ticked at once (a TAM already in the Salesforce field,
    a collaboration project already there), recorded as done by the system."""
    if kind not in EngagementKind.values:
        raise ValidationError({"kind": f"Unknown engagement kind {kind!r}."})
    if Engagement.objects.filter(account=account, ended_at__isnull=True).exists():
        raise ValidationError("This account already has an open engagement.")
    now = timezone.now()
    project = CollaborationProject.objects.filter(account=account).first()
    has_project = project is not None and project.gitlab_id is not None
    engagement = Engagement.objects.create(
        account=account,
        kind=kind,
        started_by=user,
        started_at=now,
        stage=(
            EngagementStage.POST_SALES
            if kind == EngagementKind.UPGRADE or (project and project.in_post_sales)
            else EngagementStage.PRE_SALES
        ),
    )
    already = {
        "tam_assign": account.tam_id is not None,
        "sa_create_project": has_project,
        "confirm_project": has_project,
        "confirm_template": has_project,
        "move_post_sales": project is not None and project.in_post_sales,
    }
    EngagementStep.objects.bulk_create(
        EngagementStep(
            engagement=engagement,
            key=step.key,
            position=i,
            title=step.title,
            who=step.who,
            done_at=now if already.get(step.key) else None,
            note="Already done when the engagement started" if already.get(step.key) else "",
            may_be_not_needed=step.may_be_not_needed,
        )
        for i, step in enumerate(rules.steps_for(kind, account.segment), start=1)
    )
    return engagement


def engagement_step_set(
    *, step: EngagementStep, user: AbstractBaseUser | None, done: bool
) -> EngagementStep:
    """Tick or untick one checklist step; who and when are recorded."""
    step.done_at = timezone.now() if done else None
    step.done_by = user if done else None
    step.note = ""
    step.not_needed = False
    step.save(update_fields=["done_at", "done_by", "note", "not_needed"])
    return step


# When the TAM decides a Commercial upgrade needs no customer project, there is no project
# whose template to verify either.
NOT_NEEDED_FOLLOWS: dict[str, str] = {"confirm_project": "confirm_template"}


@transaction.atomic
def engagement_step_not_needed(
    *, step: EngagementStep, user: AbstractBaseUser | None, note: str
) -> EngagementStep:
    """Complete a step the TAM decides as "not needed", with why.

    "For Commercial accounts, the TAM will determine if it is beneficial to have a
    customer project." (tam-account-engagement.md, Start a customer upgrade engagement):
    the Commercial upgrade's project step may be completed without a project; the step
    verifying the project's template is then not needed either."""
    if not step.may_be_not_needed:
        raise ValidationError("This step cannot be skipped: the handbook requires it.")
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Say why it is not needed."})
    now = timezone.now()
    step.done_at, step.done_by, step.not_needed = now, user, True
    step.note = f"Not needed: {note}"[:255]
    step.save(update_fields=["done_at", "done_by", "not_needed", "note"])
    follows = NOT_NEEDED_FOLLOWS.get(step.key)
    if follows:
        EngagementStep.objects.filter(
            engagement_id=step.engagement_id, key=follows, done_at__isnull=True
        ).update(
            done_at=now,
            done_by=user,
            not_needed=True,
            note="Not needed: the TAM decided there is no customer project",
        )
    return step


def _step_complete(
    *, account_id: int, key: str, user: AbstractBaseUser | None, note: str = ""
) -> None:
    """Tick `key` on the account's open engagement (if it has that step and it is open)."""
    EngagementStep.objects.filter(
        engagement__account_id=account_id,
        engagement__ended_at__isnull=True,
        key=key,
        done_at__isnull=True,
    ).update(done_at=timezone.now(), done_by=user, note=note[:255])


@transaction.atomic
def engagement_tam_assign(
    *, account: Account, tam: AbstractBaseUser, user: AbstractBaseUser | None
) -> Account:
    """Assign the TAM from the engagement and write `Technical_Account_Manager__c` back.

    "After the Technical Account Manager has been aligned with the account, they will
    assign themselves to the “Technical Account Manager” field within Salesforce."
    (tam-account-engagement.md)"""
    changed = account.tam_id != tam.pk
    if changed:
        account.tam = tam
        account.save(update_fields=["tam", "updated_at"])
        activity_log(
            account=account,
            user=user,
            kind=ActivityKind.NOTE,
            occurred_at=timezone.now(),
            subject=f"TAM assigned: {tam.get_full_name() or tam.get_username()}",
        )
        salesforce_writeback_enqueue(
            account_ids=[account.pk],
            fields=["tam"],
            origin=WritebackOrigin.TAM_ASSIGNMENT,
            detail=f"Assigned from the engagement by {_who(user)}",
            user=user,
        )
    _step_complete(account_id=account.pk, key="tam_assign", user=user)
    return account


@transaction.atomic
def engagement_welcome_call_record(
    *,
    engagement: Engagement,
    occurred_at: dt.datetime,
    user: AbstractBaseUser | None,
    notes: str = "",
) -> Activity:
    """Log the "Welcome to GitLab" call; the engagement is post-sales from then on.

    "Once the customer has paid, the Strategic Account Leader will set up the "Welcome to
    GitLab" call ... The "Welcome to GitLab" call will introduce the customer to the
    Technical Account Manager and begin the handover process." (tam-account-engagement.md)"""
    activity = activity_log(
        account=engagement.account,
        user=user,
        kind=ActivityKind.MEETING,
        occurred_at=occurred_at,
        subject="Welcome to GitLab call",
        body=notes,
    )
    engagement.welcome_call_at = occurred_at
    engagement.stage = EngagementStage.POST_SALES
    engagement.save(update_fields=["welcome_call_at", "stage"])
    _step_complete(account_id=engagement.account_id, key="welcome_call", user=user)
    return activity


# --- Collaboration projects ---------------------------------------------------------------


def account_has_won_opportunity(account_id: int) -> bool:
    """ "Until the account becomes a paying customer the project remains in pre-sales"
    (tam-account-engagement.md): a won opportunity marks a paying customer."""
    return Opportunity.objects.filter(account_id=account_id, is_won=True).exists()


@transaction.atomic
def collaboration_project_request(
    *, account: Account, template: str, user: AbstractBaseUser | None
) -> CollaborationProject:
    """Ask for the customer's collaboration project (or retry a failed request).

    "This project will be based off the Enterprise or the Commercial Customer Success Plan
    Template" (tam-account-engagement.md). The GitLab work runs in the task
    `engagement.collaboration_project_create`, enqueued on commit."""
    if template not in ProjectTemplate.values:
        raise ValidationError({"template": f"Unknown template {template!r}."})
    if not gl.is_enabled():
        raise ValidationError(gl.NOT_CONFIGURED)
    project = CollaborationProject.objects.select_for_update().filter(account=account).first()
    path = rules.project_path_for(account.name, account.salesforce_id)
    if project is None:
        project = CollaborationProject.objects.create(
            account=account, template=template, path=path, requested_by=user
        )
    elif project.gitlab_id is None:
        # A retry: the template may be corrected. The path is worked out again: a request
        # made before paths carried the account's suffix gets one (the lookup by marker
        # still finds a project a lost attempt made).
        project.template = template
        project.path = path
        project.status = ProjectStatus.REQUESTED
        project.last_error = ""
        project.requested_by = user
        project.requested_at = timezone.now()
        project.save(
            update_fields=[
                "template",
                "path",
                "status",
                "last_error",
                "requested_by",
                "requested_at",
            ]
        )
    elif project.status == ProjectStatus.FAILED or (
        project.status == ProjectStatus.CREATED and project.welcome_issue_iid is None
    ):
        # The project exists in GitLab (its template import or welcome issue is what is
        # missing): provision it again as it is.
        project.status = ProjectStatus.REQUESTED
        project.last_error = ""
        project.save(update_fields=["status", "last_error"])
    else:
        raise ValidationError("The collaboration project already exists.")
    pk = project.pk

    def _enqueue() -> None:
        from engagement.tasks import collaboration_project_create

        collaboration_project_create.delay(project_id=pk)

    transaction.on_commit(_enqueue)
    return project


def collaboration_project_provision(*, project_id: int) -> CollaborationProject:
    """Create the project in GitLab from its template (or find it), wait for GitLab to
    finish importing the template, ensure the "Welcome to GitLab" issue, and record the
    URL on the account. Safe to run twice.

    "There is a preloaded issue for this in the project template" (tam-account-
    engagement.md): the template brings the issue once its import has finished; it is
    created only when the finished import did not bring it.

    A project is the account's by its marker, not its name: one found for this account
    that carries another account's marker (or is already recorded for another account)
    is not linked; both accounts' projects show the error (`_project_conflict`).

    A refusal that needs a person (a template project that does not exist) marks the
    project `failed` with GitLab's message and returns; a transient failure, or an import
    still running (`pending`), is recorded and re-raised
    (`GitLabError.transient`) for the task to retry."""
    project = CollaborationProject.objects.select_related("account").get(pk=project_id)
    if project.status not in (ProjectStatus.REQUESTED, ProjectStatus.FAILED):
        return project
    account = project.account
    try:
        if project.gitlab_id is not None:
            found = gl.collaboration_project_get(
                project_id=project.gitlab_id, salesforce_id=account.salesforce_id
            )
        else:
            found = gl.collaboration_project_create(
                name=rules.project_name_for(account.name),
                alternative_name=rules.project_alternative_name_for(
                    account.name, account.salesforce_id
                ),
                path=project.path,
                template=project.template,
                salesforce_id=account.salesforce_id,
                description=f"Collaboration project of {account.name} (Portfolio).",
            )
        other = (
            CollaborationProject.objects.filter(gitlab_id=found["id"])
            .exclude(pk=project.pk)
            .select_related("account")
            .first()
        )
        if other is not None:
            raise gl.CollaborationProjectConflict(
                f"The GitLab project {found['path_with_namespace']} is already the project of "
                f"account {other.account.name} ({other.account.salesforce_id}); it was not "
                "linked to this account.",
                project=found,
                owner_salesforce_id=other.account.salesforce_id,
            )
        gl.collaboration_project_ready(project_id=found["id"])
        welcome = gl.collaboration_welcome_issue_ensure(
            project_id=found["id"],
            title=WELCOME_ISSUE_TITLE,
            description=WELCOME_ISSUE_DESCRIPTION,
        )
    except ImproperlyConfigured as exc:
        _project_error(project, gl.GitLabError(str(exc)))
        return project
    except gl.CollaborationProjectConflict as exc:
        _project_conflict(project, exc)
        return project
    except gl.GitLabError as exc:
        _project_error(project, exc)
        if exc.transient:
            raise
        return project
    post_sales = found["namespace"] == gl.required_setting("GITLAB_ACCOUNT_MANAGEMENT_GROUP")
    with transaction.atomic():
        now = timezone.now()
        project.gitlab_id = found["id"]
        project.path_with_namespace = found["path_with_namespace"]
        project.web_url = found["web_url"]
        project.welcome_issue_iid = welcome["iid"]
        project.welcome_issue_url = welcome["web_url"]
        project.status = ProjectStatus.TRANSFERRED if post_sales else ProjectStatus.CREATED
        project.last_error = ""
        project.conflict_with = None
        project.created_at = project.created_at or now
        if post_sales:
            project.transferred_at = project.transferred_at or now
        project.save()
        # The other account's project no longer needs to show the conflict with this one.
        CollaborationProject.objects.filter(conflict_with=project).update(
            conflict_with=None, last_error=""
        )
        account.collaboration_project_url = found["web_url"]
        account.save(update_fields=["collaboration_project_url", "updated_at"])
        for key in ("sa_create_project", "confirm_project", "confirm_template"):
            _step_complete(
                account_id=account.pk,
                key=key,
                user=project.requested_by,
                note=f"Project {found['path_with_namespace']} from the {project.template} template",
            )
        if post_sales:
            _step_complete(account_id=account.pk, key="move_post_sales", user=None)
        elif account_has_won_opportunity(account.pk):
            # The customer already paid: move it straight on.
            project = collaboration_project_transfer_request(account=account, user=None)
    return project


def _project_error(project: CollaborationProject, exc: gl.GitLabError) -> None:
    failed = {
        ProjectStatus.REQUESTED: ProjectStatus.FAILED,
        ProjectStatus.FAILED: ProjectStatus.FAILED,
        ProjectStatus.TRANSFER_REQUESTED: ProjectStatus.TRANSFER_FAILED,
        ProjectStatus.TRANSFER_FAILED: ProjectStatus.TRANSFER_FAILED,
    }
    before = project.status
    if not exc.transient:
        project.status = failed.get(project.status, project.status)
    project.last_error = exc.message + (" (retrying)" if exc.transient else "")
    # Conditional: a concurrent attempt that succeeded meanwhile is not marked failed.
    CollaborationProject.objects.filter(pk=project.pk, status=before).update(
        status=project.status, last_error=project.last_error
    )


def _project_conflict(project: CollaborationProject, exc: gl.CollaborationProjectConflict) -> None:
    """The project found for this account is another account's (its marker, or our own
    record, says so) or nobody's: this request fails, and the other account's project,
    when Portfolio has one, shows the conflict too. Neither is linked to the other.

    "The customer's collaboration project" is one per account (tam-account-engagement.md);
    a project shared by two customers would show one customer's plan to the other."""
    account = project.account
    found = exc.project["path_with_namespace"]
    other = None
    if exc.owner_salesforce_id:
        other = (
            CollaborationProject.objects.select_related("account")
            .filter(account__salesforce_id=exc.owner_salesforce_id)
            .exclude(pk=project.pk)
            .first()
        )
    fix = (
        "Check both accounts' projects in GitLab (the marker is in the project description), "
        "then retry."
    )
    with transaction.atomic():
        _project_error(project, gl.GitLabError(f"{exc.message} {fix}"))
        CollaborationProject.objects.filter(pk=project.pk).update(conflict_with=other)
        project.conflict_with = other
        if other is not None:
            other.last_error = (
                f"Account {account.name} ({account.salesforce_id}) found this account's GitLab "
                f"project {found} where its own project should be ({project.path}); it was "
                f"not linked to it. {fix}"
            )
            other.conflict_with = project
            other.save(update_fields=["last_error", "conflict_with"])


def collaboration_project_give_up(*, project_id: int, message: str) -> None:
    """After the task's last retry: mark the project failed so a person can retry."""
    project = CollaborationProject.objects.get(pk=project_id)
    _project_error(project, gl.GitLabError(message))


@transaction.atomic
def collaboration_project_transfer_request(
    *, account: Account, user: AbstractBaseUser | None
) -> CollaborationProject:
    """Ask to move the project from pre-sales to the account-management group.

    "Once the customer has paid ... If the project was created in the pre-sales project
    under the `pre-sales account-management` group, then it is moved to a post-sales
    project under `account-management` group." (tam-account-engagement.md)"""
    project = CollaborationProject.objects.select_for_update().filter(account=account).first()
    if project is None or project.gitlab_id is None:
        raise ValidationError("Create the collaboration project first.")
    if project.status not in (ProjectStatus.CREATED, ProjectStatus.TRANSFER_FAILED):
        raise ValidationError("The project is not waiting in pre-sales.")
    if not gl.is_enabled():
        raise ValidationError(gl.NOT_CONFIGURED)
    if not account_has_won_opportunity(account.pk):
        raise ValidationError(
            "The project stays in pre-sales until the customer has paid (a won opportunity)."
        )
    project.status = ProjectStatus.TRANSFER_REQUESTED
    project.last_error = ""
    project.save(update_fields=["status", "last_error"])
    pk = project.pk

    def _enqueue() -> None:
        from engagement.tasks import collaboration_project_transfer

        collaboration_project_transfer.delay(project_id=pk)

    transaction.on_commit(_enqueue)
    return project


def collaboration_project_move(*, project_id: int) -> CollaborationProject:
    """Move the project to the account-management group in GitLab (the task's body).

    A transfer GitLab refuses marks the project `transfer_failed` with GitLab's message;
    the project stays in pre-sales and the TAM can retry."""
    project = CollaborationProject.objects.select_related("account").get(pk=project_id)
    if project.status not in (ProjectStatus.TRANSFER_REQUESTED, ProjectStatus.TRANSFER_FAILED):
        return project
    try:
        moved = gl.collaboration_project_transfer(project_id=project.gitlab_id)
    except ImproperlyConfigured as exc:
        _project_error(project, gl.GitLabError(str(exc)))
        return project
    except gl.GitLabError as exc:
        _project_error(project, exc)
        if exc.transient:
            raise
        return project
    with transaction.atomic():
        project.status = ProjectStatus.TRANSFERRED
        project.path_with_namespace = moved["path_with_namespace"]
        project.web_url = moved["web_url"]
        project.transferred_at = timezone.now()
        project.last_error = ""
        project.welcome_issue_url = (
            f"{moved['web_url']}/-/issues/{project.welcome_issue_iid}"
            if project.welcome_issue_iid
            else ""
        )
        project.save()
        project.account.collaboration_project_url = moved["web_url"]
        project.account.save(update_fields=["collaboration_project_url", "updated_at"])
        _step_complete(account_id=project.account_id, key="move_post_sales", user=None)
        Engagement.objects.filter(account_id=project.account_id, ended_at__isnull=True).update(
            stage=EngagementStage.POST_SALES
        )
    return project


def collaboration_projects_transfer_paid() -> int:
    """Request the move of every pre-sales project whose customer has since paid
    (a won opportunity). Set-based; returns how many were requested."""
    if not gl.is_enabled():
        return 0
    won = Opportunity.objects.filter(is_won=True).values("account_id")
    with transaction.atomic():
        ids = list(
            CollaborationProject.objects.select_for_update()
            .filter(status=ProjectStatus.CREATED, account_id__in=won)
            .values_list("pk", flat=True)
        )
        CollaborationProject.objects.filter(pk__in=ids).update(
            status=ProjectStatus.TRANSFER_REQUESTED, last_error=""
        )

        def _enqueue() -> None:
            from engagement.tasks import collaboration_project_transfer

            for pk in ids:
                collaboration_project_transfer.delay(project_id=pk)

        transaction.on_commit(_enqueue)
    return len(ids)


# --- Customer open issues -----------------------------------------------------------------


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def customer_issues_sync(*, account_id: int, now: dt.datetime | None = None) -> int:
    """Mirror the customer's open questions of the collaboration project, with when they
    were last answered. Returns how many are open.

    "Whenever a customer asks a question via email/Slack, kindly prompt them to open a
    Support ticket or an issue in the collaboration project"; "Make sure you are responding
    in a timely manner to customer's open issues" (tam-account-engagement.md).

    A customer question is an open issue not opened by Portfolio's own GitLab user (the
    template's issues, the welcome issue); a note by someone other than the issue's author
    is an answer. Upserted in one statement; issues no longer open are removed."""
    now = now or timezone.now()
    project = CollaborationProject.objects.get(account_id=account_id)
    if project.gitlab_id is None:
        return 0
    bot = gl.current_username()
    issues = gl.collaboration_issues_open(project_id=project.gitlab_id)
    rows = []
    for issue in issues:
        if issue["author"] == bot or issue["iid"] == project.welcome_issue_iid:
            continue
        created = _parse_time(issue["created_at"])
        customer = [
            _parse_time(n["created_at"]) for n in issue["notes"] if n["author"] == issue["author"]
        ]
        answers = [
            _parse_time(n["created_at"]) for n in issue["notes"] if n["author"] != issue["author"]
        ]
        response = rules.issue_response(
            created_at=created,
            last_customer_at=max(customer, default=None),
            last_answer_at=max(answers, default=None),
            now=now,
        )
        rows.append(
            CustomerIssue(
                account_id=account_id,
                iid=issue["iid"],
                title=issue["title"][:255],
                web_url=issue["web_url"],
                author=issue["author"],
                opened_at=created,
                last_customer_at=max(customer, default=None),
                last_answer_at=max(answers, default=None),
                awaiting_answer=response.awaiting_answer,
                waiting_since=response.waiting_since,
                notes_count=len(issue["notes"]),
                synced_at=now,
            )
        )
    with transaction.atomic():
        CustomerIssue.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["account", "iid"],
            update_fields=[
                "title",
                "web_url",
                "author",
                "opened_at",
                "last_customer_at",
                "last_answer_at",
                "awaiting_answer",
                "waiting_since",
                "notes_count",
                "synced_at",
            ],
        )
        CustomerIssue.objects.filter(account_id=account_id).exclude(
            iid__in=[r.iid for r in rows]
        ).delete()
        project.issues_synced_at = now
        project.save(update_fields=["issues_synced_at"])
    return len(rows)


def customer_issues_sync_all() -> int:
    """Enqueue the customer-issues sync of every account with a collaboration project
    (the hourly schedule). Returns how many were enqueued; nothing when GitLab is off."""
    if not gl.is_enabled():
        return 0
    ids = list(
        CollaborationProject.objects.filter(gitlab_id__isnull=False).values_list(
            "account_id", flat=True
        )
    )

    def _enqueue() -> None:
        from engagement.tasks import customer_issues_sync as task

        for account_id in ids:
            task.delay(account_id=account_id)

    transaction.on_commit(_enqueue)
    return len(ids)


def customer_issues_sync_request(*, account: Account) -> None:
    """Enqueue the sync of the account's customer issues (after commit)."""

    def _enqueue() -> None:
        from engagement.tasks import customer_issues_sync as task

        task.delay(account_id=account.pk)

    transaction.on_commit(_enqueue)


# --- Cadence calls and EBRs ---------------------------------------------------------------

CADENCE_KINDS = (ActivityKind.CADENCE_CALL, ActivityKind.EBR)


def cadence_log(
    *,
    account: Account,
    kind: str,
    occurred_at: dt.datetime,
    subject: str,
    body: str,
    user: AbstractBaseUser | None,
    outcome: str = CallOutcome.HELD,
) -> Activity:
    """Log a cadence call or an EBR on the account's timeline with what happened to it
    (held, held but the customer was late, missed, rescheduled): cadence attendance is
    read from these outcomes only ("Frequently don't show up or are late to scheduled
    cadence calls", tam-account-triage.md), and only a held call counts as the cadence."""
    if kind not in CADENCE_KINDS:
        raise ValidationError({"kind": "Log a cadence call or an EBR here."})
    if outcome not in CallOutcome.values:
        raise ValidationError({"outcome": "Say whether the call was held, missed or moved."})
    return activity_log(
        account=account,
        user=user,
        kind=kind,
        occurred_at=occurred_at,
        subject=subject,
        body=body,
        outcome=outcome,
    )


# --- Success plans ------------------------------------------------------------------------


def success_plan_refresh(*, account_ids: list[int]) -> list[int]:
    """Derive `Account.success_plan` (none / objectives / full) from the objectives and
    tasks of these accounts; two queries and one bulk update whatever their number.
    Returns the ids of the accounts whose state changed. The rule:
    `rules.success_plan_state`."""
    ids = sorted(set(account_ids))
    facts: dict[int, list[rules.ObjectiveFacts]] = {pk: [] for pk in ids}
    rows = (
        SuccessObjective.objects.filter(account_id__in=ids)
        .annotate(task_count=Count("tasks"))  # one row per objective
        .values_list("account_id", "status", "task_count")
    )
    for account_id, status, task_count in rows:
        facts[account_id].append(rules.ObjectiveFacts(status=status, task_count=task_count))
    changed = []
    for account in Account.objects.filter(pk__in=ids).only("pk", "success_plan"):
        state = rules.success_plan_state(facts[account.pk])
        if account.success_plan != state:
            account.success_plan = state
            changed.append(account)
    Account.objects.bulk_update(changed, ["success_plan"])
    return [a.pk for a in changed]


@transaction.atomic
def success_objective_add(
    *,
    account: Account,
    title: str,
    status: str,
    due_date: dt.date | None,
    user: AbstractBaseUser | None,
) -> SuccessObjective:
    title = title.strip()
    if SuccessObjective.objects.filter(account=account, title__iexact=title).exists():
        raise ValidationError({"title": "The plan already has this objective."})
    objective = SuccessObjective.objects.create(
        account=account, title=title, status=status, due_date=due_date, created_by=user
    )
    success_plan_refresh(account_ids=[account.pk])
    return objective


@transaction.atomic
def success_objective_update(
    *, objective: SuccessObjective, status: str, due_date: dt.date | None
) -> SuccessObjective:
    objective.status = status
    objective.due_date = due_date
    objective.save(update_fields=["status", "due_date", "updated_at"])
    success_plan_refresh(account_ids=[objective.account_id])
    return objective


@transaction.atomic
def success_objective_delete(*, objective: SuccessObjective) -> None:
    account_id = objective.account_id
    objective.delete()
    success_plan_refresh(account_ids=[account_id])


@transaction.atomic
def success_task_add(
    *, objective: SuccessObjective, title: str, due_date: dt.date | None
) -> SuccessTask:
    task = SuccessTask.objects.create(objective=objective, title=title.strip(), due_date=due_date)
    success_plan_refresh(account_ids=[objective.account_id])
    return task


@transaction.atomic
def success_task_set_done(*, task: SuccessTask, done: bool) -> SuccessTask:
    task.done_at = timezone.now() if done else None
    task.save(update_fields=["done_at"])
    return task


# --- Personas -----------------------------------------------------------------------------


@transaction.atomic
def contact_personas_set(*, contact: Contact, personas: list[str]) -> Contact:
    """Set the key personas a contact holds (Development Lead, Software Security Lead,
    both, or none: an empty list clears them).

    "edit the `GitLab Role` field and select the persona(s) that apply to them"
    (csm-account-engagement.md, Capturing customer personas)."""
    unknown = sorted(set(personas) - set(Persona.values))
    if unknown:
        raise ValidationError({"personas": f"Unknown persona {', '.join(map(repr, unknown))}."})
    # The rows are seeded by a migration; a database flushed since (tests) gets them back.
    KeyPersona.objects.bulk_create([KeyPersona(key=k) for k in personas], ignore_conflicts=True)
    contact.personas.set(sorted(set(personas)))
    return contact


# --- Disengagement ------------------------------------------------------------------------


@transaction.atomic
def disengagement_record(
    *,
    account: Account,
    user: AbstractBaseUser | None,
    reason: str,
    reason_detail: str,
    met_with_account_executive: bool,
    option_support: bool,
    option_written_howto: bool,
    option_features_lost: str,
    option_self_serve: bool,
    follow_up_summary: str,
) -> Disengagement:
    """Record a disengagement, end the open engagement, unassign the TAM and write it back.

    "When this happens, it is important to manage the disengagement so that the customer
    understands the reason, and is clear on who they should communicate with going
    forward." Options to review: Support; complex how-to "sent in writing to the SAL/AE";
    "If disengagement is due to the customer downgrading/churning, identify the features
    they will lose access to"; online self-serve resources. "Send a follow-up that
    summarizes what was discussed, including their assistance options."
    (tam-account-engagement.md)"""
    errors: dict[str, str] = {}
    if reason in ("downgrade", "churn") and not option_features_lost.strip():
        errors["option_features_lost"] = (
            "The customer is downgrading or churning: list the features they will lose."
        )
    if not follow_up_summary.strip():
        errors["follow_up_summary"] = "Write the follow-up summary sent to the customer."
    if errors:
        raise ValidationError(errors)
    engagement = Engagement.objects.filter(account=account, ended_at__isnull=True).first()
    now = timezone.now()
    record = Disengagement.objects.create(
        account=account,
        engagement=engagement,
        reason=reason,
        reason_detail=reason_detail.strip(),
        met_with_account_executive=met_with_account_executive,
        option_support=option_support,
        option_written_howto=option_written_howto,
        option_features_lost=option_features_lost.strip(),
        option_self_serve=option_self_serve,
        follow_up_summary=follow_up_summary.strip(),
        previous_tam_id=account.tam_id,
        recorded_by=user,
        recorded_at=now,
    )
    if engagement is not None:
        engagement.ended_at = now
        engagement.save(update_fields=["ended_at"])
    activity_log(
        account=account,
        user=user,
        kind=ActivityKind.NOTE,
        occurred_at=now,
        subject=f"Disengaged: {record.get_reason_display()}",
        body=follow_up_summary,
    )
    if account.tam_id is not None:
        account.tam = None
        account.save(update_fields=["tam", "updated_at"])
        salesforce_writeback_enqueue(
            account_ids=[account.pk],
            fields=["tam"],
            origin=WritebackOrigin.TAM_ASSIGNMENT,
            detail=f"Disengaged ({record.get_reason_display()}) by {_who(user)}",
            user=user,
        )
    return record


# --- Emails -------------------------------------------------------------------------------

EMAIL_TEMPLATE_FIELDS = ("name", "origin", "source", "subject", "body")


@transaction.atomic
def email_template_save(*, template: EmailTemplate, user: AbstractBaseUser | None) -> EmailTemplate:
    """Save an admin's edit of an email template as its next version.

    The template row holds the latest version (the panel's picker uses it); every saved
    version, the first (seeded) one included, stays in `EmailTemplateVersion` with who
    saved it and when. A save that changes none of the text keeps the version."""
    from engagement.emails import template_syntax_error

    errors = {
        name: f"Not a valid template: {error}"
        for name in ("subject", "body")
        if (error := template_syntax_error(getattr(template, name)))
    }
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    if template.pk is None:
        template.version = 1
    else:
        current = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        unchanged = all(
            getattr(current, f) == getattr(template, f) for f in EMAIL_TEMPLATE_FIELDS
        ) and (template.key == current.key and template.position == current.position)
        if unchanged:
            return current
        latest = current.versions.order_by("-version").values_list("version", flat=True).first()
        template.version = max(current.version, latest or 0) + 1
    template.updated_by = user  # type: ignore[assignment]
    template.updated_at = now
    template.save()
    EmailTemplateVersion.objects.create(
        template=template,
        version=template.version,
        saved_by=user,
        saved_at=now,
        **{f: getattr(template, f) for f in EMAIL_TEMPLATE_FIELDS},
    )
    return template


def email_queue(
    *,
    account: Account,
    user: AbstractBaseUser,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
) -> OutboundEmail:
    """Queue an e-mail to the customer; the task `engagement.email_deliver` sends it (after
    commit) and logs it on the timeline.

    Only to the account's contacts (to and cc), and at most `EMAIL_RATE_PER_USER_PER_HOUR`
    a user an hour: a TAM's mailbox is not a relay. Raises ValidationError naming the field."""
    recipients = {"to": [a.strip() for a in to if a.strip()], "cc": cc or []}
    if not recipients["to"]:
        raise ValidationError({"to": "Name at least one recipient."})
    known = {
        e.lower()
        for e in Contact.objects.filter(account=account)
        .exclude(email="")
        .values_list("email", flat=True)
    }
    for field, addresses in recipients.items():
        strangers = [a for a in addresses if a.lower() not in known]
        if strangers:
            raise ValidationError(
                {
                    field: f"{', '.join(strangers)}: not a contact of {account.name}. Add the "
                    "person as a contact of the account first."
                }
            )
    limit = settings.EMAIL_RATE_PER_USER_PER_HOUR
    recent = OutboundEmail.objects.filter(
        user=user, created_at__gte=timezone.now() - dt.timedelta(hours=1)
    ).count()
    if recent >= limit:
        raise ValidationError(
            {
                "to": f"You sent {recent} e-mails in the last hour (the limit is {limit}); "
                "try again later."
            }
        )
    email = OutboundEmail.objects.create(
        account=account,
        user=user,
        to=recipients["to"],
        cc=recipients["cc"],
        reply_to=[user.email] if getattr(user, "email", "") else [],
        subject=subject,
        body=body,
    )
    from engagement.tasks import email_deliver

    enqueue_on_commit(email_deliver, outbox_id=email.pk)
    return email


def email_deliver(*, outbox_id: int) -> OutboundEmail:
    """Send one queued e-mail and log it on the timeline (an `email` activity), in the
    transaction that marks it sent; safe to run twice (a sent one is left alone). SMTP
    errors are recorded and re-raised for the task's retries."""
    with transaction.atomic():
        email = (
            OutboundEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("account", "user")
            .filter(pk=outbox_id, status=OutboundEmailStatus.QUEUED)
            .first()
        )
        if email is None:
            return OutboundEmail.objects.get(pk=outbox_id)
        email.attempts += 1
        message = EmailMessage(
            subject=email.subject,
            body=email.body,
            to=email.to,
            cc=email.cc,
            reply_to=email.reply_to,
        )
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            failure = exc
            email.error = f"{type(exc).__name__}: {exc}"[:500]
            email.save(update_fields=["attempts", "error"])
        else:
            failure = None
            email.status = OutboundEmailStatus.SENT
            email.sent_at = timezone.now()
            email.error = ""
            email.save(update_fields=["attempts", "status", "sent_at", "error"])
            activity_log(
                account=email.account,
                user=email.user,
                kind=ActivityKind.EMAIL,
                occurred_at=email.sent_at,
                subject=email.subject,
                body=f"To: {', '.join(email.to)}\n\n{email.body}",
            )
    if failure is not None:
        raise failure  # after the commit: the try and its error stay recorded
    return email


def email_give_up(*, outbox_id: int) -> None:
    """After the task's last retry: the e-mail is marked failed with its last error."""
    OutboundEmail.objects.filter(pk=outbox_id, status=OutboundEmailStatus.QUEUED).update(
        status=OutboundEmailStatus.FAILED
    )


# --- E-Group call brief -------------------------------------------------------------------


def egroup_brief_save(
    *, account: Account, user: AbstractBaseUser | None, data: dict
) -> EGroupBrief:
    """Save the TAM's part of the E-Group call brief (the five W's, outcomes, agenda)."""
    fields = [f for f in data if f in EGROUP_FIELDS]
    brief, _ = EGroupBrief.objects.update_or_create(
        account=account, defaults={**{f: data[f] for f in fields}, "updated_by": user}
    )
    return brief


# The brief's fields the TAM edits; `engagement.forms.EGroupBriefForm` shows the same.
EGROUP_FIELDS = (
    "egroup_member",
    "who",
    "what",
    "where",
    "when",
    "why",
    "gitlab_outcome",
    "customer_outcome",
    "asks",
    "agenda",
    "topics",
    "links",
)
