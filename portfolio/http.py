"""Small HTTP helpers every app's views share: where to go back to, and cells safe to
open in a spreadsheet."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

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


def csv_cell(value: Any) -> Any:
    """A value for a CSV export: text a spreadsheet would run as a formula gets a leading
    apostrophe, as OWASP advises; numbers, dates and other text are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    return [csv_cell(value) for value in values]
