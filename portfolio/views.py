"""Portfolio pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portfolio.selectors import accounts_for_user


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The TAM's portfolio: their book of business (a manager's: their teams')."""
    accounts = accounts_for_user(request.user).select_related("region", "tam")[:50]
    return render(request, "portfolio/home.html", {"accounts": accounts})
