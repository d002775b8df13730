"""The to-do inbox: everything due for the signed-in user, in one list ordered by urgency.

Items are computed from what the apps already store (no copy to keep in step): each
source below is one query over the user's scope (`portfolio.selectors.accounts_for_user`)
that returns its rows ordered by due date, already without the items the user marked done
or snoozed, and with the total count (a window count), so a page of the inbox is a fixed
number of queries whatever the size of the book: one per source, one for the user's
item states.

An item's key names its kind, its object and its occurrence (`cadence:<account>:<due>`):
"done" hides that occurrence; the next one (a new due date) comes back by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib.auth.models import User
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    DateField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.expressions import Combinable, RawSQL
from django.db.models.functions import Cast, Concat, TruncDate
from django.urls import reverse
from django.utils import timezone

from engagement import rules as engagement_rules
from engagement.cadence import Cadence, cadence_days_sql, held_outcomes_sql, with_cadence
from engagement.models import EngagementStep, SuccessTask
from engagement.selectors import overdue_cadence_for_tams
from portfolio.models import Account, Activity, ActivityKind, Health
from portfolio.roles import role_of
from portfolio.selectors import accounts_for_user, tams_for_user
from prioritization.models import ExceptionStatus, PriorityException, RuleSet
from prioritization.selectors import pending_exceptions_for_manager
from triage.models import HealthAssessment, IssueStatus, TriageIssue, TriageUpdate
from triage.selectors import last_call
from workspace.models import InboxItemState

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

PAGE_SIZE = 25
MAX_PAGES = 40  # 1,000 items: beyond that the list says how many more there are
# Success-plan tasks and exceptions show this many days before they fall due.
LOOKAHEAD_DAYS = 14
EXCEPTION_LOOKAHEAD_DAYS = 30
CUSTOMER_ER_CALL_EVERY_DAYS = 7
KEY_PATTERN = r"^[a-z_]+:\d+(:\d{4}-\d{2}-\d{2})?$"


@dataclass(frozen=True)
class Item:
    key: str
    kind: str
    label: str
    title: str
    due: dt.date
    url: str
    detail: str = ""
    account_name: str = ""

    def status(self, today: dt.date) -> str:
        if self.due < today:
            return "overdue"
        return "today" if self.due == today else "upcoming"


@dataclass(frozen=True)
class Ctx:
    """What every source is asked with: the day, the keys to leave out, how many rows,
    and `only` one key (to check an item before marking it)."""

    today: dt.date
    now: dt.datetime
    hidden: list[str]
    limit: int
    only: str = ""


@dataclass(frozen=True)
class Batch:
    items: list[Item]
    total: int


@dataclass(frozen=True)
class Inbox:
    items: list[Item]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


# Kinds in the order they rank at equal due dates (the most pressing first).
KINDS: dict[str, str] = {
    "approval": "Approval",
    "red_no_issue": "Red, no triage issue",
    "cadence": "Cadence call overdue",
    "triage_update": "Triage update before the Customer ER call",
    "team_overdue": "Team: overdue cadence calls",
    "health": "Health colour to confirm",
    "exception": "Exception to renew",
    "ebr": "EBR due",
    "onboarding": "Onboarding step",
    "success_task": "Success-plan task due",
}


class Keyed(TypedDict):
    """What `_keyed` annotates on a source's rows (for mypy: `WithAnnotations`)."""

    item_key: str
    total: int


class KeyedDue(Keyed):
    due: dt.date


class KeyedCadence(KeyedDue, Cadence):
    """... and `engagement.cadence.with_cadence`'s."""


def _keyed(qs: QuerySet, kind: str, id_field: str, due: Combinable | None = None) -> QuerySet:
    """Annotate `item_key` (kind:id, plus :due when `due` is an expression) and the total."""
    parts: list = [Value(f"{kind}:"), Cast(id_field, CharField())]
    if due is not None:
        parts += [Value(":"), Cast(due, CharField())]
    return qs.annotate(item_key=Concat(*parts, output_field=CharField()), total=Window(Count("*")))


def _batch(qs: QuerySet, ctx: Ctx, build: Callable[[Any], Item]) -> Batch:
    if ctx.only:
        qs = qs.filter(item_key=ctx.only)
    rows = list(qs.exclude(item_key__in=ctx.hidden)[: ctx.limit])
    return Batch([build(row) for row in rows], rows[0].total if rows else 0)


def _account_url(account: Account) -> str:
    return reverse("ui:account", args=[account.salesforce_id])


# --- The TAM's own items ---------------------------------------------------------------


def cadence_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """ "Pr1: ... monthly cadence call (as minimum)"; "Pr2: 60 day call cadence"
    (tam-account-engagement.md): a P1/P2 account with no cadence call held within its
    cadence (`engagement.cadence.with_cadence`, the one definition); due the day after
    the last call plus the cadence, today when no call was ever held."""
    activity = Activity._meta.db_table
    due_sql = (
        f"COALESCE((SELECT max(a.occurred_at) FROM {activity} a "  # nosec B608 # identifiers come from code, values go as query parameters
        f'WHERE a.account_id = "portfolio_account"."id" AND a.kind = %s '
        f"AND {held_outcomes_sql('a.outcome')})::date + {cadence_days_sql()}, %s::date)"
    )
    due = RawSQL(due_sql, (ActivityKind.CADENCE_CALL.value, ctx.today), output_field=DateField())  # nosec B611 # SQL text built from code, values as parameters
    qs = with_cadence(mine, now=ctx.now).filter(cadence_overdue=True).annotate(due=due)
    qs = _keyed(qs, "cadence", "pk", F("due")).order_by("due", "-arr", "pk")

    def build(a: WithAnnotations[Account, KeyedCadence]) -> Item:
        last = f"last held {a.last_cadence_at:%d %b %Y}" if a.last_cadence_at else "none held"
        return Item(
            a.item_key,
            "cadence",
            KINDS["cadence"],
            f"Cadence call with {a.name}",
            a.due,
            _account_url(a) + "#engagement",
            f"every {a.cadence_days} days, {last}",
            a.name,
        )

    return _batch(qs, ctx, build)


def _ebr_min_sql() -> str:
    """SQL: the account's EBR minimum a year (`engagement.selectors.expectations_for`):
    its rule set's `p1/p2_ebrs_min_per_year` (empty: no minimum), the Enterprise reading
    (`engagement.rules.DEFAULT_EBRS_MIN_PER_YEAR`) when no rule set covers it."""
    rs = RuleSet._meta.db_table
    account = '"portfolio_account"'
    same = f'rs.region_id = {account}."region_id" AND rs.segment = {account}."segment"'
    branches = " ".join(
        f"WHEN {p} THEN (CASE WHEN EXISTS (SELECT 1 FROM {rs} rs WHERE {same}) "  # nosec B608 # identifiers come from code, values go as query parameters
        f"THEN (SELECT rs.p{p}_ebrs_min_per_year FROM {rs} rs WHERE {same}) "
        f"ELSE {int(engagement_rules.DEFAULT_EBRS_MIN_PER_YEAR[p])} END)"
        for p in (1, 2)
    )
    return f'(CASE "portfolio_account"."priority" {branches} END)'


def ebr_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """Fewer EBRs held in the last 12 months than the minimum (`engagement.rules.ebrs_behind`:
    Commercial P1 "Executive Business Reviews: 1-2 per year"); due a year after the last
    EBR held divided by the minimum (today when none was held)."""
    activity = Activity._meta.db_table
    held = held_outcomes_sql("a.outcome")
    window = ctx.now - dt.timedelta(days=engagement_rules.EBR_WINDOW_DAYS)
    minimum = _ebr_min_sql()
    behind_sql = (
        f"(COALESCE({minimum}, 0) > (SELECT count(*) FROM {activity} a "  # nosec B608 # identifiers come from code, values go as query parameters
        f'WHERE a.account_id = "portfolio_account"."id" AND a.kind = %s AND {held} '
        f"AND a.occurred_at >= %s))"
    )
    due_sql = (
        f"LEAST(COALESCE((SELECT max(a.occurred_at) FROM {activity} a "  # nosec B608 # identifiers come from code, values go as query parameters
        f'WHERE a.account_id = "portfolio_account"."id" AND a.kind = %s AND {held})::date '
        f"+ (365 / GREATEST({minimum}, 1)), %s::date), %s::date)"
    )
    ebr = ActivityKind.EBR.value
    qs = (
        mine.filter(priority__in=[1, 2])
        .filter(RawSQL(behind_sql, (ebr, window), output_field=BooleanField()))  # nosec B611 # SQL text built from code, values as parameters
        .annotate(due=RawSQL(due_sql, (ebr, ctx.today, ctx.today), output_field=DateField()))  # nosec B611 # SQL text built from code, values as parameters
    )
    qs = _keyed(qs, "ebr", "pk", F("due")).order_by("due", "-arr", "pk")

    def build(a: WithAnnotations[Account, KeyedDue]) -> Item:
        return Item(
            a.item_key,
            "ebr",
            KINDS["ebr"],
            f"Executive Business Review with {a.name}",
            a.due,
            _account_url(a) + "#engagement",
            f"{a.get_priority_display()}: fewer EBRs in the last 12 months than expected",
            a.name,
        )

    return _batch(qs, ctx, build)


def onboarding_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """The next open step of each open engagement's checklist (new customer or upgrade,
    tam-account-engagement.md), due since the engagement started."""
    earlier_open = EngagementStep.objects.filter(
        engagement=OuterRef("engagement"),
        position__lt=OuterRef("position"),
        done_at__isnull=True,
        not_needed=False,
    )
    qs = (
        EngagementStep.objects.filter(
            engagement__account__in=mine,
            engagement__ended_at__isnull=True,
            done_at__isnull=True,
            not_needed=False,
        )
        .filter(~Exists(earlier_open))
        .select_related("engagement__account")
        .annotate(due=TruncDate("engagement__started_at"))
    )
    qs = _keyed(qs, "onboarding", "pk").order_by("due", "pk")

    def build(s: WithAnnotations[EngagementStep, KeyedDue]) -> Item:
        account = s.engagement.account
        return Item(
            s.item_key,
            "onboarding",
            KINDS["onboarding"],
            s.title,
            s.due,
            _account_url(account) + "#engagement",
            f"{s.engagement.get_kind_display()} · {s.who}",
            account.name,
        )

    return _batch(qs, ctx, build)


def success_task_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """Open success-plan tasks due within the next two weeks, or past due."""
    qs = (
        SuccessTask.objects.filter(
            objective__account__in=mine,
            done_at__isnull=True,
            due_date__lte=ctx.today + dt.timedelta(days=LOOKAHEAD_DAYS),
        )
        .select_related("objective__account")
        .annotate(due=F("due_date"))  # never NULL here: the filter on it leaves none
    )
    qs = _keyed(qs, "success_task", "pk", F("due")).order_by("due", "pk")

    def build(t: WithAnnotations[SuccessTask, KeyedDue]) -> Item:
        account = t.objective.account
        return Item(
            t.item_key,
            "success_task",
            KINDS["success_task"],
            t.title,
            t.due,
            _account_url(account) + "#engagement",
            f"objective: {t.objective.title}",
            account.name,
        )

    return _batch(qs, ctx, build)


def health_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """ "The TAM confirms or overrides the suggested colour" (DESIGN.md, Health colours):
    a current assessment whose automatic suggestion changed the colour and nobody chose
    one, or whose new suggestion disagrees with the TAM's choice, or whose override
    expires within two weeks."""
    soon = ctx.today + dt.timedelta(days=LOOKAHEAD_DAYS)
    qs = (
        HealthAssessment.objects.filter(account__in=mine, is_current=True)
        .exclude(suggested_colour="")
        .filter(
            Q(chosen_colour="", previous_colour__gt="") & ~Q(previous_colour=F("colour"))
            | Q(chosen_colour__gt="", created_at__gt=F("chosen_at"))
            & ~Q(chosen_colour=F("suggested_colour"))
            | Q(override_expires_on__gte=ctx.today, override_expires_on__lte=soon)
        )
        .select_related("account")
        .annotate(due=TruncDate("created_at"))
    )
    qs = _keyed(qs, "health", "pk").order_by("due", "pk")

    def build(h: WithAnnotations[HealthAssessment, KeyedDue]) -> Item:
        if h.override_expires_on and h.override_expires_on <= soon:
            detail = f"your {h.chosen_colour} expires {h.override_expires_on:%d %b %Y}"
        else:
            detail = f"suggested {h.suggested_colour}" + (
                f", you chose {h.chosen_colour}" if h.chosen_colour else ""
            )
        return Item(
            h.item_key,
            "health",
            KINDS["health"],
            f"Confirm the health of {h.account.name}",
            h.due,
            reverse("triage:account", args=[h.account.salesforce_id]),
            detail,
            h.account.name,
        )

    return _batch(qs, ctx, build)


def exception_items(mine: QuerySet[Account], ctx: Ctx) -> Batch:
    """Approved priority exceptions that expire within 30 days: ask again or let them go."""
    qs = (
        PriorityException.objects.filter(
            account__in=mine,
            status=ExceptionStatus.APPROVED,
            ended_at__isnull=True,
            expires_on__gte=ctx.today,
            expires_on__lte=ctx.today + dt.timedelta(days=EXCEPTION_LOOKAHEAD_DAYS),
        )
        .select_related("account")
        .annotate(due=F("expires_on"))  # never NULL here: the filter on it leaves none
    )
    qs = _keyed(qs, "exception", "pk", F("due")).order_by("due", "pk")

    def build(e: WithAnnotations[PriorityException, KeyedDue]) -> Item:
        return Item(
            e.item_key,
            "exception",
            KINDS["exception"],
            f"P{e.requested_priority} exception of {e.account.name} expires",
            e.due,
            reverse("prioritization:account", args=[e.account.salesforce_id]),
            e.reason[:120],
            e.account.name,
        )

    return _batch(qs, ctx, build)


def triage_update_items(mine: QuerySet[Account], ctx: Ctx, *, since: dt.datetime) -> Batch:
    """ "Make sure you keep your issues updated every week with the steps you have taken"
    (tam-account-triage.md): an open triage issue of my account with no update since the
    last Customer ER call (or in the last week), due by the next call."""
    next_call = (since + dt.timedelta(days=CUSTOMER_ER_CALL_EVERY_DAYS)).date()
    due = max(next_call, ctx.today)
    recent = TriageUpdate.objects.filter(issue=OuterRef("pk"), created_at__gt=since)
    qs = (
        TriageIssue.objects.filter(account__in=mine, status=IssueStatus.OPEN)
        .filter(~Exists(recent))
        .select_related("account")
        .annotate(due=Value(due, output_field=DateField()))
    )
    qs = _keyed(qs, "triage_update", "pk", Value(due.isoformat())).order_by("-account__arr", "pk")

    def build(i: WithAnnotations[TriageIssue, KeyedDue]) -> Item:
        return Item(
            i.item_key,
            "triage_update",
            KINDS["triage_update"],
            f"Update the triage issue of {i.account.name}",
            i.due,
            reverse("triage:issue", args=[i.pk]),
            f"{i.colour} · no update since {since:%d %b}",
            i.account.name,
        )

    return _batch(qs, ctx, build)


# --- The manager's items ----------------------------------------------------------------


def approval_items(user: User, ctx: Ctx) -> Batch:
    """Priority exceptions waiting for this user's decision (not their own requests)."""
    qs = pending_exceptions_for_manager(user).exclude(requested_by=user)
    qs = _keyed(qs.annotate(due=TruncDate("created_at")), "approval", "pk")
    qs = qs.order_by("created_at", "pk")

    def build(e: WithAnnotations[PriorityException, KeyedDue]) -> Item:
        who = e.requested_by.get_full_name() or e.requested_by.get_username()
        return Item(
            e.item_key,
            "approval",
            KINDS["approval"],
            f"P{e.requested_priority} for {e.account.name}: decide",
            e.due,
            reverse("prioritization:pending"),
            f"asked by {who}: {e.reason[:100]}",
            e.account.name,
        )

    return _batch(qs, ctx, build)


def red_no_issue_items(user: User, ctx: Ctx) -> Batch:
    """ "Ensure that all Amber and Red accounts have indeed been added to the board"
    (tam-account-triage.md, the five-minute check): red accounts of the team without an
    open triage issue, the largest first."""
    open_issue = TriageIssue.objects.filter(account=OuterRef("pk"), status=IssueStatus.OPEN)
    qs = (
        accounts_for_user(user)
        .filter(health=Health.RED)
        .filter(~Exists(open_issue))
        .select_related("tam")
        .annotate(due=Value(ctx.today, output_field=DateField()))
    )
    qs = _keyed(qs, "red_no_issue", "pk").order_by("-arr", "pk")

    def build(a: WithAnnotations[Account, Keyed]) -> Item:
        tam = (a.tam.get_full_name() or a.tam.get_username()) if a.tam else "no TAM"
        return Item(
            a.item_key,
            "red_no_issue",
            KINDS["red_no_issue"],
            f"{a.name} is red without a triage issue",
            ctx.today,
            reverse("triage:account", args=[a.salesforce_id]),
            f"TAM: {tam}",
            a.name,
        )

    return _batch(qs, ctx, build)


def team_overdue_items(user: User, ctx: Ctx) -> Batch:
    """Per TAM of the team: how many of their cadence calls are overdue
    (`engagement.selectors.overdue_cadence_for_tams`, the team view's count). One item a
    TAM a week: the key carries the week's Monday, so "done" holds until the next week.
    Two queries (the TAMs, the counts); a team is a handful of TAMs."""
    monday = ctx.today - dt.timedelta(days=ctx.today.weekday())
    tams = list(tams_for_user(user).exclude(pk=user.pk).order_by("username"))
    counts = overdue_cadence_for_tams(tams, now=ctx.now)
    items = []
    for tam in sorted(tams, key=lambda t: -counts.get(t.pk, 0)):
        key = f"team_overdue:{tam.pk}:{monday.isoformat()}"
        n = counts.get(tam.pk, 0)
        if not n or key in ctx.hidden or (ctx.only and key != ctx.only):
            continue
        name = tam.get_full_name() or tam.get_username()
        url = reverse("ui:tam_dashboard", args=[tam.pk]) + "?overdue=on"
        title = f"{name}: {n} overdue cadence call{'s' if n != 1 else ''}"
        items.append(
            Item(key, "team_overdue", KINDS["team_overdue"], title, monday, url, "this week")
        )
    return Batch(items[: ctx.limit], len(items))


# --- The inbox --------------------------------------------------------------------------


def hidden_keys(user: User, *, today: dt.date) -> list[str]:
    """Keys the user marked done, or snoozed past today (one query)."""
    return list(
        InboxItemState.objects.filter(user=user)
        .filter(Q(done_at__isnull=False) | Q(snoozed_until__gt=today))
        .values_list("key", flat=True)
    )


def sources_for(user: User) -> dict[str, Callable[[Ctx], Batch]]:
    """The sources of this user's inbox: every user with a book gets their own items; a
    manager (or admin) also the manager's."""
    role = role_of(user)
    if role is None:
        return {}
    mine = accounts_for_user(user).filter(tam=user)
    call = last_call()
    now = timezone.now()
    since = call.held_at if call else now - dt.timedelta(days=CUSTOMER_ER_CALL_EVERY_DAYS)
    sources: dict[str, Callable[[Ctx], Batch]] = {
        "cadence": lambda ctx: cadence_items(mine, ctx),
        "ebr": lambda ctx: ebr_items(mine, ctx),
        "onboarding": lambda ctx: onboarding_items(mine, ctx),
        "success_task": lambda ctx: success_task_items(mine, ctx),
        "health": lambda ctx: health_items(mine, ctx),
        "exception": lambda ctx: exception_items(mine, ctx),
        "triage_update": lambda ctx: triage_update_items(mine, ctx, since=since),
    }
    if role in ("manager", "admin"):
        sources.update(
            approval=lambda ctx: approval_items(user, ctx),
            red_no_issue=lambda ctx: red_no_issue_items(user, ctx),
            team_overdue=lambda ctx: team_overdue_items(user, ctx),
        )
    return sources


def inbox_for_user(user: User, *, page: int = 1) -> Inbox:
    """One page of the user's inbox, ordered by due date (overdue first), then by kind.

    Each source returns at most `page * PAGE_SIZE` rows, so merging them gives the right
    page; a fixed number of queries (one per source, one for the item states, one for the
    last Customer ER call) whatever the size of the book."""
    today = timezone.localdate()
    now = timezone.now()
    page = max(1, min(page, MAX_PAGES))
    sources = sources_for(user)
    hidden = hidden_keys(user, today=today) if sources else []
    limit = page * PAGE_SIZE
    ctx = Ctx(today=today, now=now, hidden=hidden, limit=limit)
    batches = {kind: source(ctx) for kind, source in sources.items()}
    rank = {kind: i for i, kind in enumerate(KINDS)}
    merged = sorted(
        (item for batch in batches.values() for item in batch.items),
        key=lambda item: (item.due, rank[item.kind], item.title),
    )
    total = sum(batch.total for batch in batches.values())
    pages = max(1, min(MAX_PAGES, -(-total // PAGE_SIZE)))
    return Inbox(
        items=merged[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        total=total,
        page=page,
        pages=pages,
        counts={kind: batch.total for kind, batch in batches.items() if batch.total},
    )


def item_for_user(user: User, key: str) -> Item | None:
    """The user's current item with this key, or None (not theirs, not due, malformed):
    only an item the user sees may be marked done or snoozed. Two or three queries."""
    kind, _, rest = key.partition(":")
    object_id = rest.split(":", 1)[0]
    sources = sources_for(user)
    if kind not in sources or not object_id.isdigit():
        return None
    # The source's own query narrowed to the key (no hidden keys: a snoozed item may be
    # marked done).
    ctx = Ctx(today=timezone.localdate(), now=timezone.now(), hidden=[], limit=1, only=key)
    batch = sources[kind](ctx)
    return batch.items[0] if batch.items else None
