"""The write-back's pages: what waits for an admin (mass changes the brake held, conflicts,
refusals), on its own sync page and on each account page.

Managers and admins see the page (managers only their teams' accounts); only admins
decide. Every list is bounded; the page costs a fixed number of queries.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from portfolio import writeback
from portfolio.htmx import HtmxHttpRequest
from portfolio.models import SalesforceWriteback, WritebackStatus
from portfolio.roles import ADMINS, MANAGERS, role_of, role_required
from portfolio.selectors import accounts_for_user

LIST_LIMIT = 50


def open_writebacks(user, *, status: str):
    """Rows of one open status on accounts this user may see, newest first."""
    return (
        SalesforceWriteback.objects.filter(status=status, account__in=accounts_for_user(user))
        .select_related("account", "changed_by")
        .order_by("-decided_at")
    )


@login_required
@require_GET
@role_required(MANAGERS, message="Only managers and admins see the write-back.")
def writeback_page(request: HtmxHttpRequest) -> HttpResponse:
    role = role_of(request.user)
    conflicts = open_writebacks(request.user, status=WritebackStatus.CONFLICT)
    refused = open_writebacks(request.user, status=WritebackStatus.REFUSED)
    pending = open_writebacks(request.user, status=WritebackStatus.PENDING)
    context = {
        "user_role": role,
        # Held runs carry their own counts and sample; admins decide them.
        "held_runs": list(writeback.held_runs().order_by("-started_at")[:10])
        if role == "admin"
        else [],
        "conflicts": writeback.label_rows(list(conflicts[:LIST_LIMIT])),
        "conflict_count": conflicts.count(),
        "refused": writeback.label_rows(list(refused[:LIST_LIMIT])),
        "refused_count": refused.count(),
        "pending_count": pending.count(),
        "limit": LIST_LIMIT,
    }
    return render(request, "portfolio/writeback.html", context)


ONLY_ADMINS_DECIDE = "Only admins decide what is written to Salesforce."


DECISIONS = {
    "confirm": (writeback.writeback_confirm, "{count} change(s) confirmed; writing them now."),
    "cancel": (writeback.writeback_cancel, "{count} change(s) will not be written."),
}


@login_required
@require_POST
@role_required(ADMINS, message=ONLY_ADMINS_DECIDE)
def writeback_run_decide(request: HtmxHttpRequest, run_id: int, decision: str) -> HttpResponse:
    """An admin confirms or cancels a mass change the brake held."""
    decide, done = DECISIONS[decision]
    try:
        count = decide(run_id=run_id, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run {run_id}: " + done.format(count=count))
    return redirect("writeback:page")


@login_required
@require_POST
@role_required(ADMINS, message=ONLY_ADMINS_DECIDE)
def writeback_resolve(request: HtmxHttpRequest, writeback_id: int) -> HttpResponse:
    """ "Keep Salesforce" or "Push Portfolio" for one conflict; back to where it was asked."""
    row = get_object_or_404(SalesforceWriteback.objects.select_related("account"), pk=writeback_id)
    keep = request.POST.get("keep", "")
    if keep not in ("salesforce", "portfolio"):
        messages.error(request, "keep: choose 'salesforce' or 'portfolio'.")
    else:
        try:
            writeback.writeback_resolve(writeback_id=row.pk, keep=keep, user=request.user)
        except ValueError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{row.account.name}: "
                + (
                    "Salesforce's value kept."
                    if keep == "salesforce"
                    else "Portfolio's value will be written."
                ),
            )
    if request.POST.get("back") == "account":
        return redirect(reverse("ui:account", args=[row.account.salesforce_id]))
    return redirect("writeback:page")


app_name = "writeback"
urlpatterns = [
    path("", writeback_page, name="page"),
    path(
        "runs/<int:run_id>/confirm",
        writeback_run_decide,
        {"decision": "confirm"},
        name="confirm",
    ),
    path("runs/<int:run_id>/cancel", writeback_run_decide, {"decision": "cancel"}, name="cancel"),
    path("<int:writeback_id>/resolve", writeback_resolve, name="resolve"),
]
