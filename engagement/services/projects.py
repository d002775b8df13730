"""The customer's collaboration project in GitLab: the request, its provisioning from the
template (task `engagement.collaboration_project_create`), conflicts with another
account's project, and the move from pre-sales to the account-management group (task
`engagement.collaboration_project_transfer`). The GitLab work runs in Celery tasks
enqueued on commit; the services they call are safe to run twice."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.utils import timezone

from engagement import rules, selectors, tasks
from engagement.models import (
    CollaborationProject,
    Engagement,
    EngagementStage,
    ProjectStatus,
    ProjectTemplate,
)
from engagement.services.checklist import engagement_step_complete
from integrations import gitlab as gl
from integrations.enqueue import enqueue_on_commit
from portfolio.models import Account, Opportunity

WELCOME_ISSUE_TITLE = "Welcome to GitLab"
WELCOME_ISSUE_DESCRIPTION = (
    'The "Welcome to GitLab" call will introduce the customer to the Technical Account '
    "Manager and begin the handover process. The Technical Account Manager will then lead "
    "the rest of the call and own the customer project.\n\n"
    "- [ ] Schedule the call with the customer, the SAL/AE, SA, PSE and TAM\n"
    "- [ ] Introduce the Technical Account Manager\n"
    "- [ ] Review the PLEASE-READ-THESE-INSTRUCTIONS.md steps together\n"
)


@transaction.atomic
def collaboration_project_request(
    *, account: Account, template: str, user: User | None
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
    enqueue_on_commit(tasks.collaboration_project_provision, project_id=project.pk)
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
            engagement_step_complete(
                account_id=account.pk,
                key=key,
                user=project.requested_by,
                note=f"Project {found['path_with_namespace']} from the {project.template} template",
            )
        if post_sales:
            engagement_step_complete(account_id=account.pk, key="move_post_sales", user=None)
        elif selectors.account_has_won_opportunity(account.pk):
            # The customer already paid: move it straight on.
            project = collaboration_project_transfer_request(account=account, user=None)
    return project


def _project_error(project: CollaborationProject, exc: gl.GitLabError) -> None:
    failed: dict[str, str] = {
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
    *, account: Account, user: User | None
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
    if not selectors.account_has_won_opportunity(account.pk):
        raise ValidationError(
            "The project stays in pre-sales until the customer has paid (a won opportunity)."
        )
    project.status = ProjectStatus.TRANSFER_REQUESTED
    project.last_error = ""
    project.save(update_fields=["status", "last_error"])
    enqueue_on_commit(tasks.collaboration_project_move, project_id=project.pk)
    return project


def collaboration_project_move(*, project_id: int) -> CollaborationProject:
    """Move the project to the account-management group in GitLab (the task's body).

    A transfer GitLab refuses marks the project `transfer_failed` with GitLab's message;
    the project stays in pre-sales and the TAM can retry."""
    project = CollaborationProject.objects.select_related("account").get(pk=project_id)
    if project.status not in (ProjectStatus.TRANSFER_REQUESTED, ProjectStatus.TRANSFER_FAILED):
        return project
    if project.gitlab_id is None:  # never created in GitLab: there is nothing to move
        _project_error(project, gl.GitLabError("The project was never created in GitLab."))
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
        engagement_step_complete(account_id=project.account_id, key="move_post_sales", user=None)
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
        for pk in ids:
            enqueue_on_commit(tasks.collaboration_project_move, project_id=pk)
    return len(ids)
