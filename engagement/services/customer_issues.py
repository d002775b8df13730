"""The customer's open questions in the collaboration project, mirrored from GitLab with
when they were last answered (task `engagement.customer_issues_sync`, hourly and on
request)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from engagement import rules, tasks
from engagement.models import CollaborationProject, CustomerIssue
from integrations import gitlab as gl
from integrations.enqueue import enqueue_on_commit
from portfolio.models import Account


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
    for account_id in ids:
        enqueue_on_commit(tasks.customer_issues_sync, account_id=account_id)
    return len(ids)


def customer_issues_sync_request(*, account: Account) -> None:
    """Enqueue the sync of the account's customer issues (after commit)."""
    enqueue_on_commit(tasks.customer_issues_sync, account_id=account.pk)
