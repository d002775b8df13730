"""Triage screens: the boards, an issue, an account's health, the Customer ER agenda.

One URL serves the full page and, for htmx requests, the partial that changed
(`render(request, "screen.html#partial")`). Every object is reached through the
book-scoping selectors, so a TAM gets a 404 for another TAM's account or card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, cast
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget

from portfolio.htmx import HtmxHttpRequest
from portfolio.http import account_redirect, safe_next
from portfolio.models import Region
from portfolio.paging import page_number
from portfolio.roles import MANAGERS, role_required
from portfolio.selectors import accounts_for_user
from triage import selectors
from triage.forms import (
    AgendaFilterForm,
    CallForm,
    HealthColourForm,
    HealthSignalsForm,
    IssueEditForm,
    MoveForm,
    OpenIssueForm,
    TeamMemberForm,
    UpdateForm,
    apply_errors,
)
from triage.panels import account_panel_context
from triage.services import assessments, issues, reconcile

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from triage.models import TriageIssue


class CardShown(TypedDict):
    """What a board card with a refused move carries for the template: its form."""

    move_form: MoveForm


BOARDS = {"colours": "Colours", "regions": "Regions"}


# --- Boards --------------------------------------------------------------------------------


def _board_context(request: HtmxHttpRequest, kind: str, *, region: str = "") -> dict:
    columns = selectors.board(
        request.user,
        kind=kind,
        region=region,
        show=request.GET.get("show", ""),
        page=page_number(request.GET.get("page")),
    )
    return {
        "kind": kind,
        "board_title": BOARDS[kind],
        "columns": columns,
        "filter_query": urlencode({"region": region}) if region else "",
        "region": region,
        "regions": list(Region.objects.values_list("code", flat=True)),
    }


@require_GET
@vary_on_headers("HX-Request")
def board(request: HtmxHttpRequest, kind: str = "colours") -> HttpResponse:
    """The "Colours" board (red, amber, yellow, green) or the region board."""
    if kind not in BOARDS:
        kind = "colours"
    context = _board_context(request, kind, region=request.GET.get("region", ""))
    if request.htmx:
        return render(request, "triage/board.html#board", context)
    return render(request, "triage/board.html", context)


@require_POST
def issue_move(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    """Move a card: asks for the reason and records it (TriageEvent + health history)."""
    issue = selectors.issue_for_user(request.user, issue_id)
    kind = request.POST.get("board", "colours")
    kind = kind if kind in BOARDS else "colours"
    region = request.POST.get("region", "")  # the board's filter, kept after the move
    form = MoveForm(request.POST)
    if form.is_valid():
        try:
            issues.triage_issue_move(issue=issue, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
    if form.is_valid() and not form.errors:
        if request.htmx:
            context = _board_context(request, kind, region=region)
            response = render(request, "triage/board.html#board", context)
            return reswap(retarget(response, "#board"), "outerHTML")
        url = reverse(f"triage:board_{kind}")
        return redirect(f"{url}?region={region}" if region else url)
    cast("WithAnnotations[TriageIssue, CardShown]", issue).move_form = form
    if request.htmx:
        context = {"issue": issue, "kind": kind, "region": region}
        return render(request, "triage/board.html#card", context)
    full = _board_context(request, kind, region=region)
    for column in full["columns"]:
        for card in column.issues:
            if card.pk == issue.pk:
                card.move_form = form
    return render(request, "triage/board.html", full, status=400)


# --- An issue ------------------------------------------------------------------------------


def _issue_context(issue, **forms) -> dict:
    context = selectors.issue_detail(issue)
    context.update(
        {
            "edit_form": IssueEditForm(
                initial={
                    "churn_class": issue.churn_class,
                    "due_date": issue.due_date,
                    "success_plan_url": issue.success_plan_url,
                    "health_reason": issue.health_reason,
                }
            ),
            "update_form": UpdateForm(),
            "team_form": TeamMemberForm(),
        }
    )
    context.update(forms)
    return context


@require_GET
def issue_detail(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    issue = selectors.issue_for_user(request.user, issue_id)
    return render(request, "triage/issue.html", _issue_context(issue))


def _issue_write(request, issue, form, partial: str, action, form_key: str) -> HttpResponse:
    """Validate, call the service, answer with the partial (htmx) or the page."""
    if form.is_valid():
        try:
            action(form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
    ok = form.is_valid() and not form.errors
    issue.refresh_from_db()
    context = _issue_context(issue, **({} if ok else {form_key: form}))
    if request.htmx:
        return render(request, f"triage/issue.html#{partial}", context)
    if ok:
        return redirect(reverse("triage:issue", args=[issue.pk]))
    return render(request, "triage/issue.html", context, status=400)


@require_POST
def issue_edit(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    issue = selectors.issue_for_user(request.user, issue_id)
    return _issue_write(
        request,
        issue,
        IssueEditForm(request.POST),
        "fields",
        lambda data: issues.triage_issue_edit(issue=issue, user=request.user, **data),
        "edit_form",
    )


@require_POST
def issue_review(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    """Reviewing an issue removes ~New (from the agenda or the issue page)."""
    issue = selectors.issue_for_user(request.user, issue_id)
    issues.triage_issue_review(issue=issue, user=request.user)
    if request.htmx and request.POST.get("from") == "agenda":
        return HttpResponse("")  # the agenda row disappears
    if request.htmx:
        issue.refresh_from_db()
        return render(request, "triage/issue.html#fields", _issue_context(issue))
    return redirect(safe_next(request, reverse("triage:issue", args=[issue.pk])))


@require_POST
def issue_update_add(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    issue = selectors.issue_for_user(request.user, issue_id)
    return _issue_write(
        request,
        issue,
        UpdateForm(request.POST),
        "updates",
        lambda data: issues.triage_update_add(issue=issue, user=request.user, **data),
        "update_form",
    )


@require_POST
def issue_team_add(request: HtmxHttpRequest, issue_id: int) -> HttpResponse:
    issue = selectors.issue_for_user(request.user, issue_id)
    return _issue_write(
        request,
        issue,
        TeamMemberForm(request.POST),
        "team",
        lambda data: issues.triage_team_member_add(issue=issue, **data),
        "team_form",
    )


# --- An account's health ---------------------------------------------------------------------


@require_GET
def account_health(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """The account's health page: panel, signals form, triage issue."""
    account = selectors.account_for_user(request.user, salesforce_id)
    context = account_panel_context(request, account)
    signals = selectors.health_signals_of(account)
    context["signals_form"] = HealthSignalsForm(instance=signals)
    return render(request, "triage/account_health.html", context)


@require_POST
def health_set(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """Set the health colour (confirm or override with a reason); keeps input on error."""
    account = selectors.account_for_user(request.user, salesforce_id)
    form = HealthColourForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            assessments.health_colour_set(
                account=account,
                user=request.user,
                colour=data["colour"],
                reason=data["override_reason"],
                expires_on=data["override_expires_on"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
    ok = form.is_valid() and not form.errors
    account.refresh_from_db()
    context = account_panel_context(request, account, health_form=None if ok else form)
    context["health_saved"] = ok
    if request.htmx:
        response = render(request, "triage/account_health.html#health_panel", context)
        if ok:
            # The page header's health badge follows (out-of-band swap, no reload).
            badge = {"account": account, "oob": True}
            response.write(render_to_string("partials.html#health_badge", badge, request))
        return response
    if ok:
        return redirect(reverse("triage:account", args=[account.salesforce_id]))
    context["signals_form"] = HealthSignalsForm(instance=selectors.health_signals_of(account))
    return render(request, "triage/account_health.html", context, status=400)


@require_POST
def signals_update(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = selectors.account_for_user(request.user, salesforce_id)
    form = HealthSignalsForm(request.POST, instance=selectors.health_signals_of(account))
    if form.is_valid():
        assessments.health_signals_update(
            account=account, user=request.user, values=dict(form.cleaned_data)
        )
        return redirect(reverse("triage:account", args=[account.salesforce_id]))
    context = account_panel_context(request, account)
    context["signals_form"] = form
    return render(request, "triage/account_health.html", context, status=400)


@require_POST
def issue_open(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """A TAM opens an issue (also for a worried green or yellow account)."""
    account = selectors.account_for_user(request.user, salesforce_id)
    form = OpenIssueForm(request.POST)
    if form.is_valid():
        try:
            issues.triage_issue_open(account=account, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
    ok = form.is_valid() and not form.errors
    context = account_panel_context(request, account, open_issue_form=None if ok else form)
    if request.htmx:
        return render(request, "triage/account_health.html#triage_panel", context)
    if ok:
        return redirect(reverse("triage:account", args=[account.salesforce_id]))
    context["signals_form"] = HealthSignalsForm(instance=selectors.health_signals_of(account))
    return render(request, "triage/account_health.html", context, status=400)


# --- The weekly Customer ER agenda -------------------------------------------------------------


AGENDA_IS_FOR_MANAGERS = "The Customer ER agenda is for managers."


def _agenda_context(request: HtmxHttpRequest, params) -> dict:
    regions = list(Region.objects.values_list("code", flat=True))
    form = AgendaFilterForm(params, regions=regions)
    filters = form.cleaned_data if form.is_valid() else {}
    context = selectors.agenda(
        request.user,
        today=timezone.localdate(),
        region=filters.get("region") or "",
        min_arr=filters.get("min_arr"),
        show=params.get("show", ""),
        page=page_number(params.get("page")),
    )
    # The filters without the paging, for the sections' "show all" and page links.
    filters_only = params.copy()
    for key in ("show", "page"):
        filters_only.pop(key, None)
    context.update(
        {
            "filter_form": form,
            "call_form": CallForm(),
            "query": params.urlencode(),
            "filter_query": filters_only.urlencode(),
        }
    )
    return context


@require_GET
@vary_on_headers("HX-Request")
@role_required(MANAGERS, message=AGENDA_IS_FOR_MANAGERS)
def agenda(request: HtmxHttpRequest) -> HttpResponse:
    context = _agenda_context(request, request.GET)
    if request.htmx:
        return render(request, "triage/agenda.html#checks", context)
    return render(request, "triage/agenda.html", context)


@require_POST
@role_required(MANAGERS, message=AGENDA_IS_FOR_MANAGERS)
def agenda_call(request: HtmxHttpRequest) -> HttpResponse:
    """Record that this week's call was held: the next agenda starts from now."""
    form = CallForm(request.POST)
    if form.is_valid():
        issues.customer_er_call_record(user=request.user, notes=form.cleaned_data["notes"])
    return redirect(reverse("triage:agenda"))


@require_POST
@role_required(MANAGERS, message=AGENDA_IS_FOR_MANAGERS)
def agenda_fix(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """The five-minute check's one-click fix for one account (htmx: the checks again)."""
    account = get_object_or_404(accounts_for_user(request.user), salesforce_id=salesforce_id)
    error = ""
    try:
        reconcile.triage_reconcile_fix(user=request.user, account=account)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    params = request.GET
    if request.htmx:
        context = _agenda_context(request, params)
        context["fix_error"] = error
        return render(request, "triage/agenda.html#checks", context)
    url = reverse("triage:agenda")
    return redirect(f"{url}?{params.urlencode()}" if params else url)


agenda_fix_by_pk = require_POST(
    role_required(MANAGERS, message=AGENDA_IS_FOR_MANAGERS)(
        account_redirect("triage:agenda_fix", preserve_request=True)
    )
)
