"""The usage app's pages: the account page's product usage panel (full page or the htmx
partial) and the admin upload page (`usage.admin_views`)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from portfolio.htmx import HtmxHttpRequest
from portfolio.selectors import accounts_for_user
from usage.panels import account_usage_panel, account_usage_panel_html


@require_GET
@vary_on_headers("HX-Request")
def account_panel(request: HtmxHttpRequest, salesforce_id: str) -> HttpResponse:
    """Product usage of an account the user may see (404 otherwise)."""
    account = get_object_or_404(
        accounts_for_user(request.user).select_related("tam"), salesforce_id=salesforce_id
    )
    today = timezone.localdate()
    if request.htmx:  # the account page's panel: rendered once, kept for its next views
        return HttpResponse(account_usage_panel_html(account, today=today))
    context = {"account": account, **account_usage_panel(account, today=today)}
    return render(request, "usage/account.html", context)
