"""Prioritization screens: the account's priority panel with the exception form, the
manager's pending requests, and the overview (changes, balance)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from portfolio.htmx import HtmxHttpRequest
from portfolio.http import account_redirect
from portfolio.paging import page_number
from portfolio.roles import is_sales_manager, role_of
from portfolio.selectors import accounts_for_user, tams_for_user
from prioritization.forms import ExceptionDecisionForm, ExceptionRequestForm
from prioritization.selectors import (
    account_priority_panel,
    exceptions_for_user,
    p1_balance,
    priorities_overview_lists,
    sales_regions_of,
)
from prioritization.services import (
    priority_exception_approve,
    priority_exception_reject,
    priority_exception_request,
)


@require_GET
def index(request: HtmxHttpRequest) -> HttpResponse:
    """The user's priorities overview: changes since the last quarterly review, P1 balance,
    and (managers) the requests waiting for them."""
    is_manager = role_of(request.user) in ("manager", "admin") or is_sales_manager(request.user)
    lists = priorities_overview_lists(
        request.user,
        keys=("pending", "changes") if is_manager else ("changes",),
        show=request.GET.get("show", ""),
        page=page_number(request.GET.get("page")),
    )
    return render(
        request,
        "prioritization/index.html",
        {
            **lists,
            "balance": p1_balance(tams_for_user(request.user)),
            "is_manager": is_manager,
            "sales_regions": sales_regions_of(request.user),
        },
    )


@require_GET
def account_priority(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = get_object_or_404(
        accounts_for_user(request.user).select_related("region"), salesforce_id=salesforce_id
    )
    context = account_priority_panel(request.user, account)
    context["form"] = ExceptionRequestForm()
    return render(request, "prioritization/account.html", context)


@require_POST
@vary_on_headers("HX-Request")
def exception_request(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    account = get_object_or_404(
        accounts_for_user(request.user).select_related("region", "owner"),
        salesforce_id=salesforce_id,
    )
    form = ExceptionRequestForm(request.POST)
    sent = None
    if form.is_valid():
        try:
            sent = priority_exception_request(
                account=account,
                requested_by=request.user,
                requested_priority=form.cleaned_data["requested_priority"],
                reason=form.cleaned_data["reason"],
                expires_on=form.cleaned_data["expires_on"],
                account_executive=account.owner if form.cleaned_data["on_behalf_of_ae"] else None,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    if sent is not None and not request.htmx:
        return redirect("prioritization:account", salesforce_id=account.salesforce_id)
    context = account_priority_panel(request.user, account)
    context.update(form=ExceptionRequestForm() if sent else form, sent=sent)
    # htmx swaps only 2xx responses, so its errors come back as 200; a plain POST gets 400.
    status = 400 if form.errors and not request.htmx else 200
    template = (
        "prioritization/account.html#exception-form"
        if request.htmx
        else "prioritization/account.html"
    )
    return render(request, template, context, status=status)


account_priority_by_pk = require_GET(account_redirect("prioritization:account"))
exception_request_by_pk = require_POST(
    account_redirect("prioritization:exception_request", preserve_request=True)
)


@require_GET
def pending(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request,
        "prioritization/pending_page.html",
        {
            **priorities_overview_lists(
                request.user,
                keys=("pending",),
                show=request.GET.get("show", ""),
                page=page_number(request.GET.get("page")),
            ),
            "sales_regions": sales_regions_of(request.user),
        },
    )


@require_POST
@vary_on_headers("HX-Request")
def exception_decide(request: HtmxHttpRequest, pk: int, decision: str) -> HttpResponse:
    # A sales manager reaches the EMEA Enterprise requests of their regions only.
    rows = exceptions_for_user(request.user).select_related(
        "account", "requested_by", "account__tam", "account_executive"
    )
    exception = get_object_or_404(rows, pk=pk)
    form = ExceptionDecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    service = priority_exception_approve if decision == "approve" else priority_exception_reject
    error = ""
    try:
        service(exception=exception, manager=request.user, note=note)
        # Read again: an approval re-evaluated the account's priority in SQL.
        exception = rows.get(pk=pk)
    except PermissionDenied as exc:
        if not request.htmx:
            raise
        error = str(exc)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if not request.htmx:
        return redirect("prioritization:pending")
    return render(
        request,
        "prioritization/index.html#exception-row",
        {
            "exception": exception,
            "error": error,
            "user": request.user,
            "sales_regions": sales_regions_of(request.user),
        },
    )
