"""Celery tasks of the engagement app: one per outward step. They take ids, call a
service, and own their retry policy: transient GitLab failures (5xx, 429, timeouts) are
retried with jittered backoff; a template import still running is waited for the same
way, for longer; refusals that need a person are recorded on the project and not
retried. Every service they call is safe to run twice."""

from __future__ import annotations

import random
import smtplib

from celery import shared_task

from engagement.services import customer_issues, emails, projects
from integrations.gitlab import GitLabError

MAX_RETRIES = 5
# GitLab exports the template before importing it: minutes on a busy instance. 14 waits
# of 5 s doubling up to 5 min: about 45 minutes in all before the project is marked
# failed (the TAM's retry picks the same project up again).
IMPORT_MAX_RETRIES = 14


def retry_countdown(retries: int) -> float:
    """Seconds before the next attempt: 5 s doubling, at most 5 min, with 20% jitter."""
    return min(300, 5 * 2**retries) * random.uniform(0.8, 1.0)  # nosec B311 # jitter and demo data, not security


def _retry_or_give_up(task, exc: GitLabError, project_id: int) -> None:
    if not exc.transient:
        return
    limit = IMPORT_MAX_RETRIES if exc.pending else MAX_RETRIES
    if task.request.retries >= limit:
        projects.collaboration_project_give_up(project_id=project_id, message=exc.message)
        return
    # max_retries given here: the task's default (Celery's 3) would end the retries early
    # with the project left "requested".
    raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries), max_retries=limit)


@shared_task(bind=True, name="engagement.collaboration_project_create", acks_late=True)
def collaboration_project_provision(self, project_id: int) -> str:
    """Create (or find) the collaboration project, its welcome issue, record the URL."""
    try:
        project = projects.collaboration_project_provision(project_id=project_id)
    except GitLabError as exc:
        _retry_or_give_up(self, exc, project_id)
        return "failed"
    return project.status


@shared_task(bind=True, name="engagement.collaboration_project_transfer", acks_late=True)
def collaboration_project_move(self, project_id: int) -> str:
    """Move the project from pre-sales to the account-management group."""
    try:
        project = projects.collaboration_project_move(project_id=project_id)
    except GitLabError as exc:
        _retry_or_give_up(self, exc, project_id)
        return "failed"
    return project.status


@shared_task(name="engagement.collaboration_projects_transfer_paid", acks_late=True)
def collaboration_projects_transfer_paid() -> int:
    """Move every pre-sales project whose customer has paid (run after the Salesforce sync
    or on a schedule)."""
    return projects.collaboration_projects_transfer_paid()


@shared_task(
    bind=True,
    name="engagement.customer_issues_sync",
    acks_late=True,
    autoretry_for=(GitLabError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def customer_issues_sync(self, account_id: int) -> int:
    """Mirror the customer's open questions of the account's collaboration project."""
    return customer_issues.customer_issues_sync(account_id=account_id)


@shared_task(name="engagement.customer_issues_sync_all", acks_late=True)
def customer_issues_sync_all() -> int:
    """Enqueue the sync of every collaboration project's customer issues (hourly)."""
    return customer_issues.customer_issues_sync_all()


@shared_task(
    bind=True,
    name="engagement.email_deliver",
    acks_late=True,
    max_retries=5,
    default_retry_delay=60,
)
def email_deliver(self, outbox_id: int) -> str:
    """Send one queued customer e-mail (engagement.services.emails.email_queue); SMTP failures
    are retried a minute apart, then the e-mail is marked failed with the error."""
    try:
        email = emails.email_deliver(outbox_id=outbox_id)
    except (smtplib.SMTPException, OSError) as exc:
        if self.request.retries >= self.max_retries:
            emails.email_give_up(outbox_id=outbox_id)
            return f"e-mail {outbox_id} failed: {exc}"
        raise self.retry(exc=exc) from None
    return f"e-mail {outbox_id}: {email.status}"
