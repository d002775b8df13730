"""`{% gitlab_mirror_state %}` / `{% gitlab_mirror_state issue %}`: the GitLab mirror's
state on the triage board and an issue's page (issue 15, rough edges): "GitLab not
configured" (no query) or the last sync run (when, its status, its error) and the
issues waiting to be pushed; for an issue, its last push and whether a change waits."""

from __future__ import annotations

from django import template

from integrations.models import Source, SyncRun, SyncStatus
from triage import mirror
from triage.models import TriageIssue

register = template.Library()


@register.inclusion_tag("triage/board.html#mirror_state", takes_context=True)
def gitlab_mirror_state(context, issue: TriageIssue | None = None) -> dict:
    """Two queries when GitLab is configured (the latest run, the pending count); none
    when it is not."""
    reason = mirror.mirror_enabled()
    if reason:
        return {"configured": False, "reason": reason, "issue": issue}
    user_role = context.get("user_role")
    run = SyncRun.objects.filter(source=Source.GITLAB).order_by("-started_at", "-pk").first()
    failed = run is not None and run.status in (
        SyncStatus.FAILED,
        SyncStatus.COMPLETED_WITH_ERRORS,
    )
    pending = None if issue is not None else TriageIssue.objects.filter(needs_push=True).count()
    return {
        "configured": True,
        "run": run,
        "failed": failed,
        "pending": pending,
        "issue": issue,
        "user_role": user_role,
    }
