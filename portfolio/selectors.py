"""Reads of the book of business. `accounts_for_user` is the one scoping rule:
a TAM sees their own book, a manager their teams' books, an admin everything."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from portfolio.models import Account, Team
from portfolio.roles import role_of

User = get_user_model()


def accounts_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Account]:
    role = role_of(user)
    if role == "admin":
        return Account.objects.all()
    if role == "manager":
        # A manager's own accounts (if any) plus every account of a TAM in a team they lead.
        # A subquery rather than a join, so no DISTINCT is needed and counts stay cheap.
        team_tams = Team.tams.through.objects.filter(team__manager=user).values("user_id")
        return Account.objects.filter(Q(tam_id__in=team_tams) | Q(tam=user))
    if role == "tam":
        return Account.objects.filter(tam=user)
    return Account.objects.none()


def tams_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    """The TAMs whose books this user may look at."""
    role = role_of(user)
    if role == "admin":
        return User.objects.filter(groups__name="TAM", is_active=True).distinct()
    if role == "manager":
        team_tams = Team.tams.through.objects.filter(team__manager=user).values("user_id")
        return User.objects.filter(pk__in=team_tams, is_active=True)
    if role == "tam":
        return User.objects.filter(pk=user.pk)
    return User.objects.none()


def user_can_see_account(user: AbstractBaseUser | AnonymousUser, account: Account) -> bool:
    return accounts_for_user(user).filter(pk=account.pk).exists()
