"""Reads of the book of business. `accounts_for_user` is the one scoping rule:
a TAM sees their own book, a manager their teams' books, an admin everything."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from portfolio import datacache
from portfolio.models import (
    Account,
    AccountName,
    Health,
    Team,
)
from portfolio.roles import role_of


def accounts_for_user(user: User) -> QuerySet[Account]:
    role = role_of(user)
    if role == "admin":
        return Account.objects.all()
    if role == "manager":
        # A manager's own accounts (if any) plus every account of a TAM in a team they lead,
        # as `tam_id = ANY(ARRAY(SELECT ...))`: the dozen user ids are found first and the
        # accounts through the (tam, priority) index. `tam IN (...) OR tam = me` made the
        # planner scan every account of the company (2.9 s for a dashboard at 100,000).
        return Account.objects.filter(_tam_any(_manager_tams(user)))
    if role == "tam":
        return Account.objects.filter(tam=user)
    return Account.objects.none()


def name_search(term: str, *, salesforce_id: bool = True, scoped: bool = False) -> Q:
    """Accounts whose name contains `term` in any case or, with `salesforce_id`, whose
    Salesforce id is `term`: a condition on the account.

    The names are read from `AccountName` (its trigram index answers Django's `icontains`,
    `UPPER(name) LIKE UPPER('%term%')`), the id from the account's unique index. Which way
    round depends on the accounts searched:
    - the whole book (an admin, Django admin's lists): `id IN (names UNION ALL id)`, so
      each side is read from its index and only the matches are visited;
    - `scoped`, a book of a few thousand accounts (a TAM's, a manager's teams'): each of
      them is probed for its name (`EXISTS`, one primary-key lookup an account). Driving
      from the names instead visited every match in the company: 300 ms for a common word
      at 1M accounts (docs/performance.md, "Search")."""
    names = AccountName.objects.filter(name__icontains=term)
    if scoped:
        match = Q(Exists(names.filter(account_id=OuterRef("pk"))))
        return match | Q(salesforce_id=term) if salesforce_id else match
    ids = names.values("account_id")
    if salesforce_id:
        exact = Account.objects.filter(salesforce_id=term).order_by().values("pk")
        ids = ids.union(exact, all=True)
    return Q(pk__in=ids)


def _manager_tams(user: User) -> QuerySet:
    """The manager and the TAMs of the teams they lead, as a subquery of user ids: the
    teams found by their manager's index, their TAMs by the teams' (`UNION ALL` the
    manager). `pk = me OR teams__manager = me` joined every user to every team
    membership: a scan of both, 2.5 ms at 5,000 TAMs, once per subquery of a page."""
    led = Team.tams.through.objects.filter(team__manager=user).values("user_id")
    return led.union(User.objects.filter(pk=user.pk).values("pk"), all=True)


class _TamAny(Func):
    """`"tam_id" = ANY(ARRAY(<user ids>))`: PostgreSQL runs the subquery once, then probes
    the accounts' tam index with its few ids, whatever the size of the company."""

    arg_joiner = " = ANY(ARRAY"
    template = "%(expressions)s)"
    output_field = BooleanField()


def _tam_any(user_ids: QuerySet) -> _TamAny:
    return _TamAny(F("tam_id"), Subquery(user_ids))


def tams_for_user(user: User) -> QuerySet[User]:
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


def tams_by_name(user: User) -> list[User]:
    """The TAMs whose books this user may look at (`tams_for_user`), by name, read once
    per data version (portfolio/datacache.py): the team view's rows, a page at a time,
    and the options of the engagement panel's TAM picker."""
    return datacache.cached(
        "tams_by_name",
        (user.pk,),
        lambda: list(tams_for_user(user).order_by("last_name", "first_name", "username")),
    )


# --- Pages: dashboard, accounts table, account page, team view ---------------------------
# Every function below takes an already scoped queryset or checks scope itself, and runs a
# fixed number of queries whatever the size of the book.

RENEWAL_WINDOW_DAYS = 90


def at_risk_q() -> Q:
    """Amber and red are "at risk" (DESIGN.md, Health colours)."""
    return Q(health__in=[Health.AMBER, Health.RED])
