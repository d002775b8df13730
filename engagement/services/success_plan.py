"""The Customer Success Plan: objectives and their tasks, and `Account.success_plan`
(none / objectives / full) derived from them."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from engagement import rules
from engagement.models import SuccessObjective, SuccessTask
from portfolio.models import Account


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
    user: User | None,
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
