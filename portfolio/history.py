"""Reading the account history that the pghistory trigger records (portfolio.models.AccountEvent).

"History of changes to ARR, TAM, health and priority (who or which sync run, when, old,
new)" (issue 3). Every insert and every update that changes one of those fields leaves an
event row with the new values; its context says who (the request's user, via
pghistory.middleware.HistoryMiddleware) or which sync run (portfolio.sync). Old values come
from the previous event of the same account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, JSONObject

from portfolio.models import (  # type: ignore[attr-defined]  # AccountEvent: pghistory.track makes it
    Account,
    AccountEvent,
    Health,
    Priority,
)

TRACKED = [("arr", "ARR"), ("tam", "TAM"), ("health", "Health"), ("priority", "Priority")]


@dataclass(frozen=True)
class HistoryEntry:
    """One field change: `old` is None for the values an account was created with."""

    field: str
    label: str
    old: Any
    new: Any
    old_display: str
    new_display: str
    when: dt.datetime
    who: str
    user_id: int | None
    sync_run_id: int | None


def _display(field: str, value: Any, users: dict[int, Any]) -> str:
    if value is None or value == "":
        return "—"
    if field == "arr":
        return f"${value:,.0f}"
    if field == "tam":
        user = users.get(value)
        return (user.get_full_name() or user.username) if user else f"user #{value}"
    if field == "health":
        return Health(value).label if value in Health.values else str(value)
    if field == "priority":
        return Priority(value).label if value in Priority.values else str(value)
    return str(value)


def account_history(account: Account, *, limit: int = 50) -> list[HistoryEntry]:
    """The latest `limit` changes of ARR, TAM, health and priority, newest first.

    One query whatever the history's length: the events with their context, each with
    the names of the users it refers to (its TAM and the person who made the change).
    """
    user_model = get_user_model()

    def names_of(user_id):
        return Subquery(
            user_model.objects.annotate(pk_text=Cast("pk", TextField()))
            .filter(pk_text=user_id)
            .values(
                json=JSONObject(
                    id="pk", first_name="first_name", last_name="last_name", username="username"
                )
            )[:1]
        )

    events = list(
        AccountEvent.objects.filter(pgh_obj_id=account.pk)
        .select_related("pgh_context")
        .annotate(context_user=KeyTextTransform("user", "pgh_context__metadata"))
        .annotate(
            tam_names=names_of(Cast(OuterRef("tam_id"), TextField())),
            context_user_names=names_of(OuterRef("context_user")),
        )
        .order_by("-pgh_created_at", "-pgh_id")[: limit + 1]
    )
    events.reverse()  # oldest first; the first one may only serve as the baseline
    baseline_only = len(events) > limit
    users: dict[int, Any] = {}
    for event in events:
        if event.tam_id and event.tam_names:
            users[event.tam_id] = user_model(**event.tam_names)
        meta = event.pgh_context.metadata if event.pgh_context else {}
        if isinstance(meta.get("user"), int) and event.context_user_names:
            users[meta["user"]] = user_model(**event.context_user_names)

    entries: list[HistoryEntry] = []
    previous: AccountEvent | None = None
    for index, event in enumerate(events):
        if index == 0 and baseline_only:
            previous = event
            continue
        meta = event.pgh_context.metadata if event.pgh_context else {}
        user_id = meta.get("user") if isinstance(meta.get("user"), int) else None
        run_id = meta.get("sync_run")
        if run_id:
            who = f"Salesforce sync run {run_id}"
        elif user_id and user_id in users:
            who = users[user_id].get_full_name() or users[user_id].username
        else:
            who = "system"
        for name, label in TRACKED:
            attname = "tam_id" if name == "tam" else name
            new = getattr(event, attname)
            old = getattr(previous, attname) if previous is not None else None
            if previous is None and event.pgh_label == "insert" and new in (None, ""):
                continue
            if previous is not None and old == new:
                continue
            entries.append(
                HistoryEntry(
                    field=name,
                    label=label,
                    old=old,
                    new=new,
                    old_display=_display(name, old, users) if previous is not None else "—",
                    new_display=_display(name, new, users),
                    when=event.pgh_created_at,
                    who=who,
                    user_id=user_id,
                    sync_run_id=run_id,
                )
            )
        previous = event
    entries.reverse()
    return entries[:limit]
