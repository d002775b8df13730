"""The signed-in user and their roles in one query.

Every page asks for the user's roles (`portfolio.roles.role_of`, Django groups): read
apart, that is a query of its own on every request after the user's. This backend reads
the user with their group names aggregated (issue 12.4: pages issue at most 12 queries)
and hands them to `roles` the way it caches them, so `role_of` asks nothing more."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Q


def user_with_group_names(user_id: Any) -> User | None:
    """The user of `user_id` with `_portfolio_group_names` set (one query); None if none."""
    model = get_user_model()
    try:
        user = model._default_manager.annotate(
            portfolio_group_names=ArrayAgg(
                "groups__name", filter=Q(groups__isnull=False), default=[]
            )
        ).get(pk=user_id)
    except model.DoesNotExist:
        return None
    user._portfolio_group_names = set(user.portfolio_group_names)  # type: ignore[attr-defined]
    return user


class RoleBackend(ModelBackend):
    """ModelBackend (password sign-in, permissions) whose `get_user` also reads the
    user's group names in the same query; an inactive user's session ends, as before."""

    def get_user(self, user_id: Any) -> User | None:
        user = user_with_group_names(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
