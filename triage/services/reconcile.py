"""The five-minute check's one-click fixes (the agenda lists the mismatches,
`triage.selectors.agenda`)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from portfolio.models import Account
from triage import selectors
from triage.models import EventSource, IssueStatus, TriageIssue
from triage.services import issues


@transaction.atomic
def triage_reconcile_fix(*, user: User, account: Account) -> TriageIssue:
    """Fix one mismatch of the five-minute check for `account`:

    - "ensure that all Amber and Red accounts have indeed been added to the board": an
      amber/red account without an open issue gets one;
    - "make sure that all issues in the project have the correct health score according
      to Salesforce": the open issue takes the account's (Salesforce) colour."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    issue = TriageIssue.objects.filter(account=account, status=IssueStatus.OPEN).first()
    if issue is None:
        if account.health not in issues.AT_RISK:
            raise ValidationError(f"{account.name} is not amber or red: nothing to fix.")
        return issues.triage_issue_open(
            account=account,
            user=user,
            colour=account.health,
            reason=selectors.health_reasons_text(account),
            automatic=True,
        )
    if not account.health or issue.colour == account.health:
        raise ValidationError(f"{account.name}'s issue already matches Salesforce.")
    return issues.triage_issue_recolour(
        issue,
        to=account.health,
        actor=user,
        reason=f"Five-minute check: matched the Salesforce health score ({account.health}).",
        source=EventSource.PORTFOLIO,
    )
