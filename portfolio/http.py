"""Small HTTP helpers every app's views share: where to go back to, the old account URLs'
redirects, and cells safe to open in a spreadsheet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from portfolio.selectors import accounts_for_user

# OWASP, CSV injection: a cell starting with one of these is read as a formula by
# spreadsheet programs (=HYPERLINK(...), +cmd|..., -2+3, @SUM(...), tab, carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_next(request: HttpRequest, default: str) -> str:
    """The `next` of the request (POST, else GET) when it is a path on this site, else
    `default`: a form's "back to where I was" never sends the user to another host."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def account_redirect(to: str, *, preserve_request: bool = False) -> Callable[..., HttpResponse]:
    """A view answering an account URL of the old kind (the account's primary key,
    `<int:account_id>`) with a permanent redirect to the URL named `to`, which names the
    account by its Salesforce id as every account URL does (issue 17.8): bookmarks and the
    links of notifications and emails already sent keep working. The query string goes
    along. The account is looked up in the user's scope, so another book's account is a
    404 here as on the page itself: the redirect never tells that an account exists.

    `preserve_request`: 308 instead of 301, so a form posted to the old URL is posted again
    to the new one (a 301 turns a POST into a GET)."""

    def view(request: HttpRequest, account_id: int) -> HttpResponse:
        mine = accounts_for_user(request.user).values_list("salesforce_id", flat=True)
        url = reverse(to, args=[get_object_or_404(mine, pk=account_id)])
        if query := request.META.get("QUERY_STRING", ""):
            url = f"{url}?{query}"
        return redirect(url, permanent=True, preserve_request=preserve_request)

    return view


def csv_cell(value: Any) -> Any:
    """A value for a CSV export: text a spreadsheet would run as a formula gets a leading
    apostrophe, as OWASP advises; numbers, dates and other text are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]
