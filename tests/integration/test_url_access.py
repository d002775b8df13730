"""Every URL pattern, walked: the status each role gets (STYLE.md: "Every view checks the
user may see the object").

The walker takes every pattern from `django.urls.get_resolver()`, fills its path
converters with real objects of a small data set, and asks it as an anonymous visitor, a
TAM, their manager and an admin: on objects of the TAM's own book, and on objects of a
book none of them holds but the admin (`foreign`). Views that only take POST are also
posted to on the foreign objects (refused before anything is written) and by the roles
they refuse.

A pattern with no entry in EXPECTED fails the walk: add its expected statuses there.
Django admin's pages follow one rule (`_admin_url_and_status`): only staff get in, and for
the admin each ModelAdmin's permissions decide.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from engagement.models import EngagementStep
from engagement.services import checklist, success_plan
from integrations.models import Source, SyncRun
from notifications.models import Kind, Notification
from notifications.services import unsubscribe_token
from portfolio.api_tokens import api_token_issue
from portfolio.models import SalesforceWriteback, WritebackField, WritebackOrigin
from prioritization.services import priority_exception_request
from tests import factories
from triage.services.issues import triage_issue_open
from workspace.services import saved_view_save

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "tam", "manager", "admin")
LOGIN = "login"  # a redirect to the login page, with ?next=
ADMIN_LOGIN = "admin-login"  # a redirect to Django admin's login page
EVERYONE_SIGNED_IN = {"tam": 200, "manager": 200, "admin": 200}
SCOPED = {"tam": 404, "manager": 404, "admin": 200}  # another book: only the admin sees it
NOT_ALLOWED = {"tam": 405, "manager": 405, "admin": 405}


@dataclass(frozen=True)
class Access:
    """What each role gets from one URL pattern.

    `get`: the status of a GET on the role's own objects, per role (`LOGIN`: redirected to
    the login page). `foreign`: the status on objects of a book only the admin sees (GET,
    or POST for a POST-only view; the admin is not asked to POST), None when the pattern
    takes no object. `post_refused`: roles a POST answers 403 (nothing written)."""

    get: dict[str, int | str]
    foreign: dict[str, int] | None = None
    post_refused: tuple[str, ...] = ()
    post_only: bool = False


def page(
    *, anonymous: int | str = LOGIN, foreign: dict[str, int] | None = None, **roles: int
) -> Access:
    """A page every signed-in role opens (unless `roles` says otherwise)."""
    return Access(get={"anonymous": anonymous, **EVERYONE_SIGNED_IN, **roles}, foreign=foreign)


def post(
    *, foreign: dict[str, int] | None = None, refused: tuple[str, ...] = (), anonymous=LOGIN
) -> Access:
    """A POST-only view: a GET is 405 for the signed in; anonymous visitors go to login."""
    return Access(
        get={"anonymous": anonymous, **NOT_ALLOWED},
        foreign=foreign,
        post_refused=refused,
        post_only=True,
    )


TAM_REFUSED = {"tam": 403}  # pages for managers and admins
# An account URL of the old kind (the primary key): a permanent redirect to the page by
# Salesforce id, and on another book's account a 404 like the page's (issue 17.8).
MOVED = {"tam": 301, "manager": 301, "admin": 301}
MOVED_SCOPED = {"tam": 404, "manager": 404, "admin": 301}
FOREIGN_POST = {"tam": 404, "manager": 404}  # a POST on another book's object
NOT_YOURS = {"tam": 404, "manager": 404}

# Every URL pattern outside Django admin. A new pattern fails the walk until it is here.
EXPECTED: dict[str, Access] = {
    # public or sign-in
    "healthz": page(anonymous=200),
    "login": page(anonymous=200),
    # company sign-in answers 404 unless OIDC_ISSUER is set (portfolio/oidc.py)
    "oidc_authentication_init": page(anonymous=404, tam=404, manager=404, admin=404),
    "oidc_authentication_callback": page(anonymous=404, tam=404, manager=404, admin=404),
    "logout": post(),
    # the digest's unsubscribe link works without signing in (its token says who)
    "notifications:unsubscribe": page(anonymous=200),
    # portfolio
    "ui:home": page(),
    "ui:tam_dashboard": page(foreign=SCOPED),
    "ui:accounts_csv": page(),
    "ui:accounts_bulk": post(refused=("tam",)),
    "ui:account": page(foreign=SCOPED),
    "ui:activity_log": post(foreign=FOREIGN_POST),
    "ui:team": page(**TAM_REFUSED),
    "portfolio:api_tokens": page(),
    # another user's token is not revoked: back to one's own tokens with an error
    "portfolio:api_token_revoke": post(foreign={"tam": 302, "manager": 302}),
    # write-back and sync runs
    "writeback:page": page(**TAM_REFUSED),
    "writeback:confirm": post(refused=("tam", "manager")),
    "writeback:cancel": post(refused=("tam", "manager")),
    "writeback:resolve": post(refused=("tam", "manager")),
    "portfolio:sync_runs": page(**TAM_REFUSED),
    "portfolio:sync_now": post(refused=("tam", "manager")),
    # prioritization
    "prioritization:index": page(),
    "prioritization:account": page(foreign=SCOPED),
    "prioritization:exception_request": post(foreign=FOREIGN_POST),
    "prioritization:account_by_pk": page(**MOVED, foreign=MOVED_SCOPED),
    # a POST is redirected with 308 (posted again to the new URL), a GET is 405 as before
    "prioritization:exception_request_by_pk": post(foreign=FOREIGN_POST),
    "prioritization:pending": page(),
    "prioritization:exception_approve": post(foreign=FOREIGN_POST),
    "prioritization:exception_reject": post(foreign=FOREIGN_POST),
    # triage
    "triage:board_colours": page(),
    "triage:board_regions": page(),
    "triage:issue": page(foreign=SCOPED),
    "triage:issue_move": post(foreign=FOREIGN_POST),
    "triage:issue_review": post(foreign=FOREIGN_POST),
    "triage:issue_edit": post(foreign=FOREIGN_POST),
    "triage:issue_update": post(foreign=FOREIGN_POST),
    "triage:issue_team": post(foreign=FOREIGN_POST),
    "triage:account": page(foreign=SCOPED),
    "triage:health_set": post(foreign=FOREIGN_POST),
    "triage:signals": post(foreign=FOREIGN_POST),
    "triage:issue_open": post(foreign=FOREIGN_POST),
    "triage:agenda": page(**TAM_REFUSED),
    "triage:agenda_call": post(refused=("tam",)),
    "triage:agenda_fix": post(foreign={"tam": 403, "manager": 404}, refused=("tam",)),
    "triage:agenda_fix_by_pk": post(foreign={"tam": 403, "manager": 404}, refused=("tam",)),
    # engagement
    "engagement:account": page(foreign=SCOPED),
    "engagement:section": page(foreign=SCOPED),
    "engagement:brief_export": page(foreign=SCOPED),
    **{
        f"engagement:{name}": post(foreign=FOREIGN_POST)
        for name in (
            "start",
            "step",
            "tam_assign",
            "welcome_call",
            "project",
            "project_transfer",
            "cadence",
            "objective_add",
            "objective",
            "objective_delete",
            "task_add",
            "task",
            "persona",
            "issues_sync",
            "disengage",
            "email",
            "brief",
        )
    },
    # usage
    "usage:account": page(foreign=SCOPED),
    # notifications (each user's own rows)
    "notifications:list": page(),
    "notifications:bell": page(),
    "notifications:dropdown": page(),
    "notifications:read_all": post(),
    "notifications:read": post(foreign=NOT_YOURS),
    "notifications:open": post(foreign=NOT_YOURS),
    "notifications:preferences": page(),
    # workspace
    "workspace:inbox": page(),
    "workspace:inbox_done": post(),
    "workspace:inbox_snooze": post(),
    "workspace:search": page(),
    "workspace:saved_view_create": post(),
    "workspace:saved_view_delete": post(foreign=NOT_YOURS),
    # JSON API: 401 without a session or token, never a login redirect
    "api-priority-evaluate": post(anonymous=401),
    "api-account-priority": page(anonymous=401, foreign=SCOPED),
    "api-health-evaluate": post(anonymous=401),
    "api-usage": post(anonymous=401),
}


# --- the data set -------------------------------------------------------------------------


@dataclass
class Book:
    """One TAM's objects: an account with a triage issue, a priority exception, an
    engagement with its steps, a success objective with a task, and the per-user rows."""

    tam: Any
    account: Any
    issue: Any
    exception: Any
    step: Any
    objective: Any
    task: Any


@dataclass
class DataSet:
    users: dict[str, Any]
    own: Book
    foreign: Book
    foreign_tam: Any
    per_user: dict[str, dict[str, int]] = field(default_factory=dict)
    run_id: int = 0


def _book(tam: Any, name: str) -> Book:
    account = factories.AccountFactory(name=name, tam=tam, renewal_date=dt.date(2027, 1, 15))
    issue = triage_issue_open(account=account, user=tam, colour="amber", reason="Low adoption")
    exception = priority_exception_request(
        account=account, requested_by=tam, requested_priority=1, reason="Critical project"
    )
    checklist.engagement_start(account=account, kind="new_customer", user=tam)
    step = EngagementStep.objects.filter(engagement__account=account).order_by("pk").first()
    objective = success_plan.success_objective_add(
        account=account, title="Faster releases", status="green", due_date=None, user=tam
    )
    task = success_plan.success_task_add(
        objective=objective, title="Pipeline review", due_date=None
    )
    return Book(tam, account, issue, exception, step, objective, task)


def _per_user(user: Any) -> dict[str, int]:
    notification = Notification.objects.create(
        user=user,
        kind=Kind.HEALTH_AT_RISK,
        key=f"walk-{user.pk}",
        day=timezone.localdate(),
        title="Acme turned Red",
        body="Health Green -> Red",
        url="/",
    )
    view = saved_view_save(owner=user, name="Mine", querystring="health=red")
    token, _ = api_token_issue(user=user, name="walk", scope="read", days=30)
    return {"notification_id": notification.pk, "view_id": view.pk, "token_id": token.pk}


@pytest.fixture
def data(team, tam, manager, admin_user) -> DataSet:
    foreign_tam = factories.UserFactory(role="TAM")
    data = DataSet(
        users={"tam": tam, "manager": manager, "admin": admin_user},
        own=_book(tam, "Acme Inc"),
        foreign=_book(foreign_tam, "Globex Corp"),
        foreign_tam=foreign_tam,
    )
    for role, user in [*data.users.items(), ("foreign", foreign_tam)]:
        data.per_user[role] = _per_user(user)
    SalesforceWriteback.objects.create(
        account=data.own.account,
        field=WritebackField.HEALTH,
        value="amber",
        origin=WritebackOrigin.HEALTH_ASSESSMENT,
        decided_at=timezone.now(),
    )
    data.run_id = SyncRun.objects.create(
        source=Source.SALESFORCE, trigger="manual", started_at=timezone.now()
    ).pk
    return data


# --- the walk -----------------------------------------------------------------------------

CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or the route itself for an unnamed pattern
    route: str
    namespace: str
    view: str


def walk(resolver: URLResolver | None = None, prefix: str = "", ns: str = "") -> Iterator[Route]:
    for item in (resolver or get_resolver()).url_patterns:
        if isinstance(item, URLResolver):
            inner = ":".join(n for n in (ns, item.namespace or "") if n)
            yield from walk(item, prefix + str(item.pattern), inner)
        elif isinstance(item, URLPattern):
            route = prefix + str(item.pattern)
            name = f"{ns}:{item.name}" if ns and item.name else (item.name or route)
            callback = item.callback
            view = f"{callback.__module__}.{getattr(callback, '__name__', callback)}"
            yield Route(key=name, route=route, namespace=ns, view=view)


def _value(data: DataSet, route: Route, kwarg: str, role: str, *, foreign: bool) -> str:
    book = data.foreign if foreign else data.own
    owner = "foreign" if foreign else role if role in data.users else "tam"
    objects: dict[str, Any] = {
        "salesforce_id": book.account.salesforce_id,
        "account_id": book.account.pk,
        "issue_id": book.issue.pk,
        "step_id": book.step.pk,
        "objective_id": book.objective.pk,
        "task_id": book.task.pk,
        "user_id": book.tam.pk,
        "run_id": data.run_id,
        "writeback_id": SalesforceWriteback.objects.filter(account=book.account).first().pk
        if SalesforceWriteback.objects.filter(account=book.account).exists()
        else 0,
        "name": "cadence",
        "fmt": "md",
        "token": unsubscribe_token(data.users.get(role, data.users["tam"])),
        **data.per_user[owner],
    }
    if kwarg == "pk":
        return str(book.exception.pk)  # prioritization: exceptions/<pk>/approve|reject
    return str(objects[kwarg])


def url_of(data: DataSet, route: Route, role: str, *, foreign: bool = False) -> str:
    def fill(match: re.Match) -> str:
        return _value(data, route, match["name"], role, foreign=foreign)

    return "/" + CONVERTER.sub(fill, route.route)


def takes_object(route: Route) -> bool:
    return bool(CONVERTER.search(route.route))


def client_for(data: DataSet, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(data.users[role])
    return client


def _shown(response) -> int | str:
    """The status, with a redirect to a login page named as such."""
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/accounts/login/?next="):
            return LOGIN
        if location.startswith("/admin/login/?next="):
            return ADMIN_LOGIN
    return response.status_code


def _missing(routes: list[Route], known: set[str]) -> list[str]:
    return [
        f"{r.key!r} ({r.route}, {r.view})"
        for r in routes
        if r.namespace != "admin" and r.key not in known
    ]


def test_every_url_pattern_has_an_expectation():
    missing = _missing(list(walk()), set(EXPECTED))
    assert not missing, (
        "URL patterns with no expected status per role: "
        + "; ".join(missing)
        + ". Add each to EXPECTED in tests/integration/test_url_access.py (page(...) or "
        "post(...): what an anonymous visitor, a TAM, their manager and an admin get, and "
        "on another book's objects)."
    )
    stale = set(EXPECTED) - {r.key for r in walk()}
    assert not stale, f"EXPECTED names URL patterns that no longer exist: {sorted(stale)}"


def test_every_url_answers_each_role_as_expected(data):
    clients = {role: client_for(data, role) for role in ROLES}
    wrong: list[str] = []
    for route in walk():
        if route.namespace == "admin" or route.key not in EXPECTED:
            continue  # admin: its own test; unknown: the test above fails
        access = EXPECTED[route.key]
        for role in ROLES:
            got = _shown(clients[role].get(url_of(data, route, role)))
            if got != access.get[role]:
                wrong.append(f"GET {route.key} as {role}: {got}, expected {access.get[role]}")
        for role, status in (access.foreign or {}).items():
            url = url_of(data, route, role, foreign=True)
            client = clients[role]
            got = _shown(client.post(url) if access.post_only else client.get(url))
            if got != status:
                wrong.append(f"{route.key} on another book as {role}: {got}, expected {status}")
        for role in access.post_refused:
            got = _shown(clients[role].post(url_of(data, route, role)))
            if got != 403:
                wrong.append(f"POST {route.key} as {role}: {got}, expected 403")
    assert not wrong, "\n".join(wrong)
    # Refused and out-of-book requests changed nothing.
    assert data.foreign.exception.__class__.objects.get(pk=data.foreign.exception.pk).status == (
        "pending"
    )
    assert data.foreign.tam.api_tokens.filter(revoked_at__isnull=True).count() == 1


# --- Django admin ---------------------------------------------------------------------------

ADMIN_OBJECT_PAGE = re.compile(r"^admin:(?P<model>\w+?)_(?P<page>change|history|delete)$")
ADMIN_LIST_PAGE = re.compile(r"^admin:(?P<model>\w+?)_(?P<page>changelist|add)$")
# Django admin's own pages beside the models' ones, and Portfolio's custom admin pages.
ADMIN_SITE_PAGES = {
    "admin:index": 200,
    "admin:app_list": 200,
    "admin:password_change": 200,
    "admin:password_change_done": 200,
    "admin:jsi18n": 200,
    "admin:autocomplete": 403,  # without a field to complete: refused
    "admin:usage_upload": 200,
}


def _model_admins() -> dict[str, tuple[Any, Any]]:
    return {
        f"{model._meta.app_label}_{model._meta.model_name}": (model, model_admin)
        for model, model_admin in admin.site._registry.items()
    }


def _admin_url_and_status(route: Route, request: Any) -> tuple[str, int | str] | None:
    """The URL to ask as an admin and the status expected, from the ModelAdmin's own
    permissions; None for a pattern this rule does not know (the walk then fails)."""
    admins = _model_admins()
    if route.key in ADMIN_SITE_PAGES:
        path = "/admin/portfolio/" if route.key == "admin:app_list" else "/" + route.route
        return path, ADMIN_SITE_PAGES[route.key]
    if route.key == "admin:login":
        return "/admin/login/", 302  # signed in already: on to the index
    if route.key == "admin:logout":
        return "/admin/logout/", 405  # POST only
    if route.key == "admin:view_on_site":
        return "/admin/r/0/0/", 404
    if route.route.endswith("(?P<url>.*)$"):
        return "/admin/no-such-page/", 404  # the catch-all
    if route.route.endswith("<id>/password/"):
        model, _ = admins["auth_user"]
        return f"/admin/auth/user/{model._default_manager.order_by('pk').first().pk}/password/", 200
    if match := ADMIN_LIST_PAGE.match(route.key):
        model, model_admin = admins[match["model"]]
        path = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        if match["page"] == "add":
            return path + "add/", 200 if model_admin.has_add_permission(request) else 403
        return path, 200 if model_admin.has_view_permission(request) else 403
    match = ADMIN_OBJECT_PAGE.match(route.key)
    unnamed = route.key == route.route or route.key == "admin:None"
    if match or (unnamed and route.route.endswith("<path:object_id>/")):
        label = match["model"] if match else "_".join(route.route.split("/")[1:3])
        model, model_admin = admins[label]
        obj = model._default_manager.order_by("pk").first()
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        if obj is None:
            return base + "0/change/", 302  # no such row: back to the index with a message
        if not match:
            return f"{base}{obj.pk}/", 302  # the old change URL redirects to the new one
        page_name = match["page"]
        allowed = {
            "change": model_admin.has_view_or_change_permission(request, obj),
            "history": model_admin.has_view_or_change_permission(request, obj),
            "delete": model_admin.has_delete_permission(request, obj),
        }[page_name]
        return f"{base}{obj.pk}/{page_name}/", 200 if allowed else 403
    return None


def test_django_admin_is_for_staff_and_follows_each_model_admin(data, rf):
    routes = [r for r in walk() if r.namespace == "admin"]
    request = rf.get("/admin/")
    request.user = data.users["admin"]
    clients = {role: client_for(data, role) for role in ROLES}
    unknown, wrong = [], []
    for route in routes:
        known = _admin_url_and_status(route, request)
        if known is None:
            unknown.append(f"{route.key!r} ({route.route}, {route.view})")
            continue
        url, expected = known
        got = _shown(clients["admin"].get(url))
        if got != expected:
            wrong.append(f"GET {url} ({route.key}) as admin: {got}, expected {expected}")
        # Anyone else goes to a login page: an anonymous visitor to the site's (the model
        # pages, LoginRequiredMiddleware) or the admin's (the site's own pages); a signed-in
        # user who is not staff to the admin's.
        for role, refused in (
            ("anonymous", (LOGIN, ADMIN_LOGIN)),
            ("tam", (ADMIN_LOGIN,)),
            ("manager", (ADMIN_LOGIN,)),
        ):
            if route.key in ("admin:login", "admin:logout"):
                continue
            got = _shown(clients[role].get(url))
            if got not in refused:
                wrong.append(f"GET {url} ({route.key}) as {role}: {got}, expected {refused}")
    assert not unknown, (
        "Django admin URL patterns this walk has no rule for: "
        + "; ".join(unknown)
        + ". Add them to ADMIN_SITE_PAGES (or a rule in _admin_url_and_status) in "
        "tests/integration/test_url_access.py."
    )
    assert not wrong, "\n".join(wrong)
    assert clients["anonymous"].get("/admin/login/").status_code == 200
