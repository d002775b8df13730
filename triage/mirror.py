"""The GitLab mirror of the triage board (the Account Triage project).

Push: each triage issue is created in GITLAB_TRIAGE_PROJECT with the template body, its
labels, the fiscal-quarter milestone (created if missing) and due date; later changes
update it; recovery closes it with the new colour label; weekly updates become notes.
A retried push never creates a second issue or note: both carry a marker that is
looked up before creating.

Pull (`triage_gitlab_sync`, run by beat and `manage.py sync_gitlab`): label and state
changes made on GitLab's board flow back. GitLab's colour label updates the *issue*;
the account's health colour (Salesforce) is left alone, so a board move made on GitLab
shows up in the five-minute check as a mismatch with a one-click fix (a health colour
change needs a reason, which a GitLab label does not carry).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations import gitlab as gl
from integrations.locks import advisory_lock
from integrations.models import QuarantinedRecord, Source, SyncCursor, SyncRun, SyncStatus
from integrations.services import sync_run_skip, sync_run_start
from triage import labels as triage_labels
from triage.models import (
    EventKind,
    EventSource,
    IssueStatus,
    TriageEvent,
    TriageIssue,
    TriageUpdate,
)
from triage.services import issues

logger = logging.getLogger(__name__)

DISABLED = "GitLab is disabled (GITLAB_URL/GITLAB_TOKEN unset): the triage mirror did nothing."
NO_PROJECT = "GITLAB_TRIAGE_PROJECT is unset: the triage mirror did nothing."
CURSOR_OBJECT = "triage_issue"
# pg advisory lock key: one GitLab triage sync at a time.
SYNC_LOCK_KEY = 0x7472_6961  # "tria"
NOTE_MARKER = "<!-- portfolio:triage-update:{} -->"
NOTE_MARKER_RE = re.compile(r"<!-- portfolio:triage-update:(\d+) -->")


def mirror_enabled() -> str | None:
    """None when the mirror can run, else the reason it cannot."""
    if not gl.is_enabled():
        return DISABLED
    if not gl.is_enabled("GITLAB_TRIAGE_PROJECT"):
        return NO_PROJECT
    return None


def _ensure_labels_and_boards() -> int:
    made = gl.triage_labels_ensure(
        {name: triage_labels.LABEL_HEX[name] for name in triage_labels.ALL_LABELS}
    )
    return made + gl.triage_boards_ensure(triage_labels.BOARD_LISTS)


def triage_issue_push(*, issue_id: int, ensure_labels: bool = True) -> str:
    """Create or update the GitLab issue of one triage issue; safe to run twice."""
    reason = mirror_enabled()
    if reason:
        logger.info(reason)
        return reason
    issue = (
        TriageIssue.objects.select_related("account")
        .prefetch_related("team__user")
        .get(pk=issue_id)
    )
    seen_update = issue.updated_at
    if ensure_labels:
        gl.triage_labels_ensure(
            {name: triage_labels.LABEL_HEX[name] for name in triage_labels.ALL_LABELS}
        )
    milestone_id = None
    if issue.renewal_date and issue.milestone:
        start, end = triage_labels.fiscal_quarter_bounds(
            issue.renewal_date, fiscal_year_start_month=settings.FISCAL_YEAR_START_MONTH
        )
        milestone_id = gl.triage_milestone_ensure(
            issue.milestone, start_date=start.isoformat(), due_date=end.isoformat()
        )
    body = triage_labels.issue_body(
        issue_id=issue.pk,
        salesforce_url=issue.salesforce_url,
        success_plan_url=issue.success_plan_url,
        renewal_date=issue.renewal_date,
        reason=issue.health_reason,
        team=[(m.get_role_display(), m.display_name) for m in issue.team.all()],
    )
    result = gl.triage_issue_upsert(
        marker=triage_labels.marker(issue.pk),
        iid=issue.gitlab_iid,
        title=issue.title,
        description=body,
        labels=issue.labels,
        milestone_id=milestone_id,
        due_date=issue.due_date.isoformat() if issue.due_date else None,
        closed=not issue.is_open,
        managed_labels=triage_labels.ALL_LABELS,
    )
    _push_notes(issue, iid=result["iid"])
    # Clear needs_push only if nothing changed locally while we were talking to GitLab.
    fields = {
        "gitlab_iid": result["iid"],
        "gitlab_web_url": result["web_url"],
        "gitlab_synced_at": timezone.now(),
    }
    TriageIssue.objects.filter(pk=issue.pk).update(**fields)
    TriageIssue.objects.filter(pk=issue.pk, updated_at=seen_update).update(needs_push=False)
    verb = "created" if result["created"] else "updated"
    return f"GitLab issue #{result['iid']} {verb} for triage issue {issue.pk}"


def _push_notes(issue: TriageIssue, *, iid: int) -> None:
    pending = list(
        issue.updates.filter(gitlab_note_id__isnull=True)
        .select_related("author")
        .order_by("created_at")
    )
    if not pending:
        return
    existing = {
        int(m.group(1)): note_id
        for note_id, body in gl.triage_notes_list(iid=iid)
        if (m := NOTE_MARKER_RE.search(body or ""))
    }
    for update in pending:
        note_id = existing.get(update.pk)
        if note_id is None:
            author = update.author.get_full_name() if update.author else "Portfolio"
            body = (
                f"**Weekly update** by {author} on {update.created_at:%Y-%m-%d}\n\n"
                f"{update.body}\n\n{NOTE_MARKER.format(update.pk)}"
            )
            note_id = gl.triage_note_add(iid=iid, body=body)
        # One row per note, right after GitLab took it: a crash between two notes must not
        # post the first one again (the marker lookup above is the second guard).
        TriageUpdate.objects.filter(pk=update.pk).update(gitlab_note_id=note_id)


@dataclass
class SyncResult:
    run: SyncRun | None
    message: str


def triage_gitlab_sync(
    *, trigger: str = "manual", progress: Callable[[int, int], None] | None = None
) -> SyncResult:
    """Pull label and state changes from GitLab's board, then push pending local changes.

    One run at a time (a PostgreSQL advisory lock); a SyncRun (source "gitlab") records
    the counts; a GitLab issue that cannot be applied is quarantined with the reason and
    the run ends `completed_with_errors`."""
    reason = mirror_enabled()
    if reason:
        logger.info(reason)
        return SyncResult(run=None, message=reason)
    with advisory_lock(SYNC_LOCK_KEY) as held:
        if not held:
            message = "Another GitLab sync is running; skipped."
            sync_run_skip(source=Source.GITLAB, trigger=trigger, reason=message)
            return SyncResult(run=None, message=message)
        run = sync_run_start(source=Source.GITLAB, trigger=trigger)
        try:
            _sync(run, progress=progress)
        except Exception as exc:
            run.status = SyncStatus.FAILED
            run.error = f"{type(exc).__name__}: {exc}"
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            logger.exception("GitLab triage sync %s failed", run.pk)
            raise
    return SyncResult(run=run, message=summary_line(run))


def summary_line(run: SyncRun) -> str:
    return (
        f"GitLab sync {run.status}: {run.created_count} created, {run.updated_count} updated, "
        f"{run.unchanged_count} unchanged, {run.quarantined_count} quarantined"
    )


def _sync(run: SyncRun, *, progress: Callable[[int, int], None] | None) -> None:
    _ensure_labels_and_boards()
    issues.triage_issues_refresh_from_accounts()
    cursor, _ = SyncCursor.objects.get_or_create(source=Source.GITLAB, object_name=CURSOR_OBJECT)
    since = cursor.position.isoformat() if cursor.position else None
    remote = gl.triage_issues_changed(updated_after=since)
    pending_ids = list(
        TriageIssue.objects.filter(needs_push=True).order_by("pk").values_list("pk", flat=True)
    )
    total = len(remote) + len(pending_ids)
    done = 0
    local_ids = [triage_labels.marker_id(r["description"]) for r in remote]
    by_id = {
        i.pk: i
        for i in TriageIssue.objects.filter(pk__in=[m for m in local_ids if m]).select_related(
            "account"
        )
    }
    newest = cursor.position
    with transaction.atomic():
        for item in remote:
            done += 1
            stamp = parse_datetime(item["updated_at"] or "")
            if stamp and (newest is None or stamp > newest):
                newest = stamp
            local_id = triage_labels.marker_id(item["description"])
            issue = by_id.get(local_id) if local_id else None
            if issue is None or issue.needs_push:
                # Not ours (made by hand on GitLab), or a local change waits to be pushed
                # and wins.
                run.unchanged_count += 1
            else:
                try:
                    with transaction.atomic():
                        changed = _apply_remote(issue, item)
                except IntegrityError as exc:
                    _quarantine(run, item, f"Cannot apply: {exc}")
                else:
                    if changed:
                        run.updated_count += 1
                    else:
                        run.unchanged_count += 1
            if progress:
                progress(done, total)
        if newest is not None:
            cursor.position = newest
            cursor.save(update_fields=["position", "updated_at"])
    for issue_id in pending_ids:
        done += 1
        try:
            message = triage_issue_push(issue_id=issue_id, ensure_labels=False)
        except gl.GitLabError as exc:
            if exc.unreachable:
                raise  # GitLab gave no answer: the run fails and the next one retries
            _quarantine(run, {"triage_issue": issue_id}, f"Push failed: {exc}")
        else:
            if " created " in message:
                run.created_count += 1
            else:
                run.updated_count += 1
        if progress:
            progress(done, total)
    run.status = SyncStatus.COMPLETED_WITH_ERRORS if run.quarantined_count else SyncStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(
        update_fields=[
            "status",
            "finished_at",
            "created_count",
            "updated_count",
            "unchanged_count",
            "quarantined_count",
        ]
    )


def _quarantine(run: SyncRun, payload: dict, reason: str) -> None:
    QuarantinedRecord.objects.create(
        source=Source.GITLAB,
        object_name="triage_issue",
        external_id=str(payload.get("iid") or payload.get("triage_issue") or ""),
        payload=payload,
        reason=reason,
        sync_run=run,
    )
    run.quarantined_count += 1


def _apply_remote(issue: TriageIssue, item: dict) -> bool:
    """Apply GitLab's labels and state to the local issue; record what changed."""
    state = triage_labels.read_labels(item["labels"])
    now = timezone.now()
    fields: list[str] = []
    events: list[TriageEvent] = []

    def event(kind: str, **kw) -> None:
        events.append(
            TriageEvent(issue=issue, kind=kind, source=EventSource.GITLAB, created_at=now, **kw)
        )

    if state.colour and state.colour != issue.colour:
        event(
            EventKind.MOVED,
            from_colour=issue.colour,
            to_colour=state.colour,
            reason="Label changed on GitLab's board.",
        )
        issue.colour = state.colour
        fields.append("colour")
    if state.new != issue.is_new:
        if not state.new:
            event(EventKind.REVIEWED, reason="~New removed on GitLab.")
        else:
            event(EventKind.LABELS, reason="~New added on GitLab.")
        issue.is_new = state.new
        fields.append("is_new")
    if state.churn_class != issue.churn_class:
        event(
            EventKind.LABELS,
            reason=f"Churn class {issue.churn_class or 'none'} -> "
            f"{state.churn_class or 'none'} on GitLab.",
        )
        issue.churn_class = state.churn_class
        fields.append("churn_class")
    remote_open = item["state"] == "opened"
    if remote_open != issue.is_open:
        if remote_open:
            issue.status, issue.closed_at = IssueStatus.OPEN, None
            event(EventKind.REOPENED, reason="Reopened on GitLab.")
        else:
            issue.status, issue.closed_at = IssueStatus.CLOSED, now
            event(EventKind.CLOSED, to_colour=issue.colour, reason="Closed on GitLab.")
        fields += ["status", "closed_at"]
    if item.get("web_url") and item["web_url"] != issue.gitlab_web_url:
        issue.gitlab_web_url = item["web_url"]
        fields.append("gitlab_web_url")
    if issue.gitlab_iid != item["iid"]:
        issue.gitlab_iid = item["iid"]
        fields.append("gitlab_iid")
    if not fields:
        return False
    issue.gitlab_synced_at = now
    issue.save(update_fields=[*fields, "gitlab_synced_at"])
    # The save bumped updated_at but the issue now equals GitLab: nothing to push.
    TriageIssue.objects.filter(pk=issue.pk).update(needs_push=False)
    TriageEvent.objects.bulk_create(events)
    return True
