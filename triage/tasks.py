"""Celery tasks of the triage app: they take ids, call a service, own their retry policy
and are safe to run twice (STYLE.md rule 12)."""

from __future__ import annotations

from celery import shared_task

from integrations import gitlab as gl
from triage import mirror
from triage.services import assessments, issues


@shared_task(name="triage.health_assess_all")
def health_assess_all() -> str:
    """The daily automatic health run (beat): new suggestions beside the TAMs' choices."""
    summary = assessments.health_assess()
    opened = issues.triage_issues_open_for_red()
    return (
        f"Health: {summary.assessed} assessed, {summary.changed_suggestion} new suggestions, "
        f"{summary.changed_colour} colour changes, {summary.overrides_expired} overrides "
        f"expired, {opened} triage issues opened for red accounts"
    )


@shared_task(
    name="triage.issue_mirror",
    autoretry_for=(gl.GitLabError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def triage_issue_push(issue_id: int) -> str:
    """Push one triage issue to GitLab. A retry after a lost answer finds the issue by its
    marker instead of creating a second one. GitLab disabled: a no-op that says so."""
    return mirror.triage_issue_push(issue_id=issue_id)


@shared_task(name="triage.sync_gitlab")
def sync_gitlab(trigger: str = "schedule") -> str:
    """Pull label/state changes from GitLab's board and push pending local changes."""
    return mirror.triage_gitlab_sync(trigger=trigger).message
