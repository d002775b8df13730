"""Reads of the workspace. The inbox is `workspace.inbox`, the search `workspace.search`."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Case, IntegerField, Q, Value, When

from portfolio import datacache
from workspace.models import SavedView

SAVED_VIEWS_SHOWN = 30


def saved_views_for(user: User) -> list[SavedView]:
    """The user's own views and the shared ones, own first, by name (bounded, one query).
    A shared view is only a query string: each viewer sees it over their own book."""
    if not user.is_authenticated:
        return []
    # On every dashboard: cached under the data version (a view saved or removed is a
    # write), so a warm dashboard does not ask for them.
    return datacache.cached("saved_views", (user.pk,), lambda: _saved_views(user))


def _saved_views(user: User) -> list[SavedView]:
    mine = Case(When(owner=user, then=Value(0)), default=Value(1), output_field=IntegerField())
    return list(
        SavedView.objects.filter(Q(owner=user) | Q(shared=True))
        .select_related("owner")
        .annotate(mine=mine)
        .order_by("mine", "name", "pk")[:SAVED_VIEWS_SHOWN]
    )
