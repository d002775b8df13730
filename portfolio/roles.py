"""Roles are Django groups created by a data migration: TAM, Manager, Admin."""

from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

Role = Literal["admin", "manager", "tam"]

GROUP_TAM = "TAM"
GROUP_MANAGER = "Manager"
GROUP_ADMIN = "Admin"


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The broadest role a user holds: admin > manager > tam; None for anyone else.

    Group names are cached on the user object so a page asks the database once.
    """
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return "admin"
    names = getattr(user, "_portfolio_group_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        user._portfolio_group_names = names  # type: ignore[union-attr]
    if GROUP_ADMIN in names:
        return "admin"
    if GROUP_MANAGER in names:
        return "manager"
    if GROUP_TAM in names:
        return "tam"
    return None
