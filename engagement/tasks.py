"""Celery tasks of the engagement app: one per outward step. They take ids, call a
service, and own their retry policy: transient GitLab failures (5xx, 429, timeouts) are
retried with jittered backoff; refusals that need a person are recorded on the project
and not retried. Every service they call is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from engagement import services
from integrations.gitlab import CollaborationProjectError

MAX_RETRIES = 5


def _retry_or_give_up(task, exc: CollaborationProjectError, project_id: int) -> None:
    if not exc.transient:
        return
    if task.request.retries >= MAX_RETRIES:
        services.collaboration_project_give_up(project_id=project_id, message=exc.message)
        return
    raise task.retry(exc=exc, countdown=min(300, 5 * 2**task.request.retries))


@shared_task(bind=True, name="engagement.collaboration_project_create", acks_late=True)
def collaboration_project_create(self, project_id: int) -> str:
    """Create (or find) the collaboration project, its welcome issue, record the URL."""
    try:
        project = services.collaboration_project_provision(project_id=project_id)
    except CollaborationProjectError as exc:
        _retry_or_give_up(self, exc, project_id)
        return "failed"
    return project.status


@shared_task(bind=True, name="engagement.collaboration_project_transfer", acks_late=True)
def collaboration_project_transfer(self, project_id: int) -> str:
    """Move the project from pre-sales to the account-management group."""
    try:
        project = services.collaboration_project_move(project_id=project_id)
    except CollaborationProjectError as exc:
        _retry_or_give_up(self, exc, project_id)
        return "failed"
    return project.status


@shared_task(name="engagement.collaboration_projects_transfer_paid", acks_late=True)
def collaboration_projects_transfer_paid() -> int:
    """Move every pre-sales project whose customer has paid (run after the Salesforce sync
    or on a schedule)."""
    return services.collaboration_projects_transfer_paid()


@shared_task(
    bind=True,
    name="engagement.customer_issues_sync",
    acks_late=True,
    autoretry_for=(CollaborationProjectError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def customer_issues_sync(self, account_id: int) -> int:
    """Mirror the customer's open questions of the account's collaboration project."""
    return services.customer_issues_sync(account_id=account_id)


@shared_task(name="engagement.customer_issues_sync_all", acks_late=True)
def customer_issues_sync_all() -> int:
    """Enqueue the sync of every collaboration project's customer issues (hourly)."""
    return services.customer_issues_sync_all()
