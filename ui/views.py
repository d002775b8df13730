"""Portfolio pages: the TAM's dashboard, the account page and the manager's team view.

One URL serves a full page and, for htmx requests, the fragment that changed
(`render(request, "screen.html#partial")`), so every link and form also works without JS.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url
from redis.exceptions import RedisError

from portfolio import datacache
from portfolio.history import account_history
from portfolio.htmx import HtmxHttpRequest
from portfolio.http import csv_row
from portfolio.models import Account, Region
from portfolio.paging import page_number
from portfolio.roles import MANAGERS, role_of, role_required
from portfolio.selectors import accounts_for_user, tams_by_name, tams_for_user
from portfolio.services import activity_log
from ui import bulk, charts, glance, panels, selectors
from ui.forms import COLUMNS, SORTS, AccountFilterForm, ActivityForm
from usage.panels import account_usage_panel_known

logger = logging.getLogger(__name__)

LAST_SEEN_KEY = "portfolio:last-seen:{}"
# A new visit starts after this long without opening the dashboard.
VISIT_GAP = dt.timedelta(minutes=30)


def region_codes() -> list[str]:
    """The regions' codes for the filter forms (cached under the data version)."""
    return datacache.cached(
        "regions", (), lambda: list(Region.objects.values_list("code", flat=True))
    )


# --- Dashboard --------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def home(request: HtmxHttpRequest) -> HttpResponse:
    """The signed-in user's own book (a manager's: their teams' books)."""
    accounts = accounts_for_user(request.user)
    return _dashboard(request, accounts=accounts, owner=None, own=True)


@require_GET
@vary_on_headers("HX-Request")
def tam_dashboard(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    """Any TAM's dashboard, for a manager of their team or an admin (404 otherwise)."""
    bulk_tams = _bulk_tams(request)
    owner: User | None
    if bulk_tams is None:
        owner = get_object_or_404(tams_for_user(request.user), pk=user_id)
    else:
        # The bulk bar lists the TAMs this user may see: the owner is one of them (one
        # query for both).
        owner = next((t for t in bulk_tams if t.pk == user_id), None)
        if owner is None:
            raise Http404("No such TAM in your teams.")
    accounts = accounts_for_user(request.user).filter(tam=owner)
    return _dashboard(
        request,
        accounts=accounts,
        owner=owner,
        own=owner.pk == request.user.pk,
        bulk_tams=bulk_tams,
    )


def _dashboard(
    request: HtmxHttpRequest, *, accounts, owner, own: bool, bulk_tams: list | None = None
) -> HttpResponse:
    today = timezone.localdate()
    form = AccountFilterForm(request.GET, regions=region_codes())
    table = _accounts_table(request, accounts, form, bulk_tams=bulk_tams)
    if request.htmx:
        # Push the canonical URL (only the filters in use), so the address bar stays short
        # and bookmarkable whatever the form serialised.
        response = render(request, "ui/dashboard.html#accounts_table", table)
        return push_url(response, table["page_url"])
    since = _visit(request.user.pk) if own else None
    # Figures and charts change only when data does: cached under the data version, per
    # viewer and book (portfolio/datacache.py).
    summary = datacache.cached(
        "dashboard",
        (request.user.pk, owner.pk if owner is not None else "", today),
        lambda: _dashboard_summary(request, accounts, owner=owner, today=today),
    )
    context = {
        **table,
        **summary,
        "owner": owner,
        "own": own,
        "since": since,
        "changes": panels.changes_since(accounts, since=since),
    }
    return render(request, "ui/dashboard.html", context)


def _dashboard_summary(request: HtmxHttpRequest, accounts, *, owner, today: dt.date) -> dict:
    figures = selectors.dashboard_figures(accounts, today=today, renewal_months=12)
    tam_count = 1 if owner is not None or role_of(request.user) == "tam" else None
    if tam_count is None:
        tam_count = max(1, tams_for_user(request.user).count())
    target = settings.BOOK_OF_BUSINESS_TARGET_USD * tam_count
    p1_target = panels.p1_target(accounts)
    renewals = selectors.renewals_by_month(accounts, today=today, months=12, figures=figures)
    trend = panels.book_trend(accounts, figures=figures, today=today)
    health_series = [(r["label"], r["mix"]) for r in trend if r["mix"] or r["month"] is None]
    # A TAM's dashboard (their own, or one a manager opened) lists the latest quarterly
    # review's changes to that book; a manager's team-wide home does not.
    review_tam = (
        owner if owner is not None else (request.user if role_of(request.user) == "tam" else None)
    )
    return {
        "figures": figures,
        "target": target,
        "tam_count": tam_count,
        "target_pct": round(100 * float(figures["book_arr"]) / target) if target else 0,
        "p1_target": p1_target,
        "p1_pct": round(100 * figures["p1"] / figures["count"]) if figures["count"] else 0,
        "review_changes": (
            panels.quarterly_review_changes(review_tam) if review_tam is not None else None
        ),
        "triage_open": panels.open_triage_count(accounts),
        "book_chart": charts.book_vs_target(figures["book_arr"], target),
        "priority_chart": charts.priority_mix(
            {level: figures[f"p{level}"] for level in (1, 2, 3, 4)}, p1_target["share"]
        ),
        "health_series": health_series,
        "health_chart": charts.health_mix_over_time(health_series),
        "trend_chart": charts.book_over_time(trend, target),
        "renewals_chart": charts.renewals_by_month(renewals),
    }


def _accounts_table(
    request: HtmxHttpRequest, accounts, form: AccountFilterForm, *, bulk_tams: list | None = None
) -> dict:
    rows = form.apply(selectors.accounts_with_table_columns(accounts))
    f = form.cleaned()
    paginator = Paginator(rows, f.get("per_page") or 25)
    page = paginator.get_page(f.get("page") or 1)
    base = request.path
    return {
        "form": form,
        "page": page,
        "base_url": base,
        "querystring": form.querystring(),
        "page_url": f"{base}?{form.querystring()}" if form.querystring() else base,
        "export_url": reverse("ui:accounts_csv")
        + "?"
        + form.querystring(page=None, per_page=None, tam=_tam_param(request)),
        "sort_links": {
            key.lstrip("-") + ("_desc" if key.startswith("-") else ""): (
                f"{base}?{form.querystring(sort=key, page=None)}"
            )
            for key in SORTS
        },
        "current_sort": f.get("sort") or "name",
        "prev_url": f"{base}?{form.querystring(page=page.previous_page_number())}"
        if page.has_previous()
        else "",
        "next_url": f"{base}?{form.querystring(page=page.next_page_number())}"
        if page.has_next()
        else "",
        "show_tam": role_of(request.user) != "tam" and _tam_param(request) is None,
        # The saved-views bar and the column choice (workspace app, issue 15.4).
        "columns": form.columns(),
        "column_choices": COLUMNS,
        **_bulk_context(request, page.paginator.count, tams=bulk_tams),
    }


def _bulk_tams(request: HtmxHttpRequest) -> list[User] | None:
    """The TAMs of the bulk bar (managers and admins; None for anyone else)."""
    if not bulk.may_bulk(request.user):
        return None
    return list(tams_for_user(request.user).order_by("first_name", "username"))


def _bulk_context(
    request: HtmxHttpRequest, matching: int, *, tams: list[User] | None = None
) -> dict:
    """The bulk bar of the accounts table (managers and admins); its TAM list is `tams`
    when the view read it already, else a lazy queryset, read only when the bar shows."""
    if not bulk.may_bulk(request.user):
        return {"bulk": False}
    return {
        "bulk": True,
        "bulk_tams": (
            tams
            if tams is not None
            else tams_for_user(request.user).order_by("first_name", "username")
        ),
        "bulk_parameters": bulk.whatif_parameter_choices(),
        "bulk_max": bulk.BULK_MAX,
        "bulk_all_allowed": 0 < matching <= bulk.BULK_MAX,
        "bulk_owner_id": _tam_param(request),
    }


def _tam_param(request: HtmxHttpRequest) -> int | None:
    """The TAM of a TAM's dashboard (`user_id` in the URL); None on the user's own."""
    match = request.resolver_match
    return match.kwargs.get("user_id") if match is not None else None


def _visit(user_id: int) -> dt.datetime | None:
    """Record a dashboard visit; return when the previous visit was (None on the first).

    Kept in the cache (Redis) keyed by user, so it costs no SQL and follows the user across
    sessions and devices; losing it only loses the "since last visit" highlights, so with
    Redis down the dashboard answers without them."""
    key = LAST_SEEN_KEY.format(user_id)
    now = timezone.now()
    try:
        state = cache.get(key) or {}
    except (RedisError, OSError) as exc:
        logger.warning("Dashboard without last-visit highlights: cache unavailable (%s)", exc)
        return None
    previous, latest = state.get("previous"), state.get("latest")
    if latest is None or now - latest > VISIT_GAP:
        previous = latest
    try:
        cache.set(key, {"previous": previous, "latest": now}, timeout=60 * 60 * 24 * 90)
    except (RedisError, OSError) as exc:
        logger.warning("Dashboard visit not recorded: cache unavailable (%s)", exc)
    return previous


@require_GET
def accounts_csv(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The accounts of the current filter as CSV, streamed (no size limit in memory)."""
    accounts = accounts_for_user(request.user)
    tam_id = request.GET.get("tam")
    if tam_id:
        if not tam_id.isdigit():
            return HttpResponseBadRequest(
                f"tam: {tam_id[:40]!r} is not a user id (a whole number).",
                content_type="text/plain; charset=utf-8",
            )
        owner = get_object_or_404(tams_for_user(request.user), pk=int(tam_id))
        accounts = accounts.filter(tam=owner)
    form = AccountFilterForm(request.GET)
    rows = form.apply(selectors.accounts_with_table_columns(accounts))
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="accounts-{stamp}.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(
        [
            "salesforce_id",
            "name",
            "priority",
            "health",
            "arr",
            "region",
            "segment",
            "renewal_date",
            "tam",
            "last_cadence_call",
            "cadence_overdue",
        ]
    )
    for a in rows.iterator(chunk_size=2000):
        yield writer.writerow(
            csv_row(
                [
                    a.salesforce_id,
                    a.name,
                    a.get_priority_display() if a.priority else "",
                    a.health,
                    a.arr,
                    a.region_id,
                    a.segment,
                    a.renewal_date.isoformat() if a.renewal_date else "",
                    a.tam.get_username() if a.tam else "",
                    a.last_cadence_at.isoformat() if a.last_cadence_at else "",
                    "yes" if a.cadence_overdue else "no",
                ]
            )
        )


# --- Account page -----------------------------------------------------------------------


@require_GET
def account_detail(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = selectors.account_for_page(request.user, salesforce_id)
    context = {"account": account, "activity_form": _new_activity_form()}
    context.update(_account_context(request, account))
    context.update(_timeline_context(account))
    context.update(glance.account_summary(account, context))
    return render(request, "ui/account.html", context)


@require_POST
def account_activity_log(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """Log an activity; on error the form comes back with what the user typed."""
    account = selectors.account_for_page(request.user, salesforce_id)
    form = ActivityForm(request.POST)
    if form.is_valid():
        activity_log(account=account, user=request.user, **form.cleaned_data)
        form, status, saved = _new_activity_form(), 200, True
    else:
        status, saved = (200 if request.htmx else 400), False
    context = {"account": account, "activity_form": form, "activity_saved": saved}
    context.update(_timeline_context(account))
    if request.htmx:
        return render(request, "ui/account.html#timeline", context, status=status)
    if saved:
        return redirect(reverse("ui:account", args=[account.salesforce_id]) + "#timeline")
    context.update(_account_context(request, account))
    context.update(glance.account_summary(account, context))
    return render(request, "ui/account.html", context, status=status)


def _account_context(request: HtmxHttpRequest, account: Account) -> dict:
    context = panels.account_panels(request, account)
    today = timezone.localdate()
    context.update(
        today=today,
        opportunities=selectors.account_open_opportunities(account),
        history=account_history(account, limit=20),
        # Shown at once if rendered since the data last changed, else loaded after the page.
        usage_panel=account_usage_panel_known(account, today=today),
    )
    return context


def _new_activity_form() -> ActivityForm:
    now = timezone.localtime().replace(second=0, microsecond=0)
    return ActivityForm(initial={"occurred_at": now, "kind": "call"})


def _timeline_context(account: Account) -> dict:
    timeline = selectors.account_timeline(account)
    return {"timeline": timeline}


# --- Team view --------------------------------------------------------------------------


TEAM_PAGE_SIZE = 50


@require_GET
@role_required(MANAGERS, message="The team view is for managers.")
def team(request: HtmxHttpRequest) -> HttpResponse:
    """Each TAM's workload for their manager (or an admin), TEAM_PAGE_SIZE TAMs a page;
    TAMs get 403. Only the page's TAMs are aggregated (an admin's company-wide view lists
    thousands: aggregating and rendering 5,000 rows took seconds at 1M accounts); the
    header counts every TAM's book. Cached under the data version, per viewer and page."""
    today = timezone.localdate()
    tams = tams_by_name(request.user)
    pages = max(1, -(-len(tams) // TEAM_PAGE_SIZE))
    page = min(page_number(request.GET.get("page")), pages)
    shown = tams[(page - 1) * TEAM_PAGE_SIZE : page * TEAM_PAGE_SIZE]
    rows, extra = datacache.cached(
        "team", (request.user.pk, today, page), lambda: _team_workload(request, shown)
    )
    if pages == 1:
        totals = {key: sum(r[key] for r in rows) for key in ("count", "book_arr")}
    else:
        totals = datacache.cached(
            "team_totals",
            (request.user.pk, today),
            lambda: selectors.team_book_totals(request.user),
        )
    target = settings.BOOK_OF_BUSINESS_TARGET_USD
    for row in rows:
        row["arr_pct"] = round(100 * float(row["book_arr"]) / target) if target else 0
        row["p1_pct"] = round(100 * row["p1"] / row["count"]) if row["count"] else 0
        row["balance"] = extra["balance_by_tam"].get(row["tam"].pk, [])
    context = {
        "rows": rows,
        "tam_count": len(tams),
        "page": page,
        "pages": pages,
        "first": (page - 1) * TEAM_PAGE_SIZE + 1,
        "last": (page - 1) * TEAM_PAGE_SIZE + len(rows),
        "target": target,
        "totals": totals,
        **extra,
    }
    context.update(_team_trend(request, team_target=target * max(1, len(tams))))
    return render(request, "ui/team.html", context)


def _team_trend(request: HtmxHttpRequest, *, team_target: float) -> dict:
    """The teams' health mix and book against target month by month (one query, cached
    under the data version with the workload: at 1M accounts its 24,000 probes of the
    history took 40 ms for a manager's 2,000 accounts)."""
    today = timezone.localdate()
    trend = datacache.cached(
        "team_trend",
        (request.user.pk, today),
        lambda: panels.book_trend(accounts_for_user(request.user), today=today),
    )
    health_series = [(r["label"], r["mix"]) for r in trend if r["mix"] or r["month"] is None]
    return {
        "team_target": team_target,
        "trend_chart": charts.book_over_time(trend, team_target),
        "health_chart": charts.health_mix_over_time(health_series),
    }


def _team_workload(request: HtmxHttpRequest, tams: list[User]) -> tuple[list[dict], dict]:
    rows = selectors.team_workload(request.user, tams)
    return rows, panels.team_panels(request, tams)
