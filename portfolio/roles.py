"""Roles are Django groups created by data migrations: TAM, Manager, Admin, and Sales
Management (the regional Sales Management team that decides EMEA Enterprise priority
exceptions; see `is_sales_manager`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

Role = Literal["admin", "manager", "tam"]

GROUP_TAM = "TAM"
GROUP_MANAGER = "Manager"
GROUP_ADMIN = "Admin"
GROUP_SALES_MANAGEMENT = "Sales Management"


def _group_names(user: User) -> set[str]:
    names: set[str] | None = getattr(user, "_portfolio_group_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        # A cache of our own on the user object (portfolio.auth sets it with the user).
        user._portfolio_group_names = names  # type: ignore[attr-defined]
    return names


def is_sales_manager(user: User | AnonymousUser) -> bool:
    """In the "Sales Management" group: "Exceptions will be addressed to the regional
    Sales Management team" (tam-account-engagement.md, EMEA Enterprise). Which regions
    they cover is `portfolio.models.SalesManager.regions`. This is not one of the
    `role_of` levels: a sales manager may also be a manager, and sees no book for it."""
    return user.is_authenticated and GROUP_SALES_MANAGEMENT in _group_names(user)


def role_of(user: User | AnonymousUser) -> Role | None:
    """The broadest role a user holds: admin > manager > tam; None for anyone else.

    Group names are cached on the user object so a page asks the database once.
    """
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "admin"
    names = _group_names(user)
    if GROUP_ADMIN in names:
        return "admin"
    if GROUP_MANAGER in names:
        return "manager"
    if GROUP_TAM in names:
        return "tam"
    return None


View = TypeVar("View", bound=Callable[..., Any])
MANAGERS: tuple[Role, ...] = ("manager", "admin")
ADMINS: tuple[Role, ...] = ("admin",)


def role_required(roles: tuple[Role, ...], *, message: str) -> Callable[[View], View]:
    """The view is for users whose `role_of` is one of `roles` (`MANAGERS`, `ADMINS`);
    anyone else gets 403 with `message`, which the 403 page shows. Put it below
    `@require_GET` / `@require_POST`, so a wrong method is answered 405 first. Anonymous
    users never get here: LoginRequiredMiddleware sends them to the login page."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if role_of(request.user) not in roles:
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
