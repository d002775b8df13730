"""The "API tokens" page: each user issues, sees and revokes their own tokens."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portfolio.api_tokens import LIFETIMES_DAYS, api_token_issue, api_token_revoke
from portfolio.htmx import HtmxHttpRequest
from portfolio.models import ApiTokenScope


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What will use it, e.g. “weekly report script”."
    )
    scope = forms.ChoiceField(choices=ApiTokenScope.choices, initial=ApiTokenScope.READ)
    days = forms.TypedChoiceField(
        label="Expires after",
        coerce=int,
        choices=[(d, f"{d} days") for d in LIFETIMES_DAYS],
        initial=90,
    )


@require_http_methods(["GET", "POST"])
def api_tokens(request: HtmxHttpRequest) -> HttpResponse:
    """List the user's tokens; POST issues one and shows its text once, on this answer only."""
    form = TokenForm(request.POST or None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _token, issued = api_token_issue(user=request.user, **form.cleaned_data)
            form = TokenForm()
        else:
            status = 400
    context = {
        "form": form,
        "issued": issued,
        "tokens": list(request.user.api_tokens.all()[:50]),
    }
    response = render(request, "portfolio/api_tokens.html", context, status=status)
    response["Cache-Control"] = "private, no-store"  # the page may hold a token's text
    return response


@require_POST
def api_token_revoke_view(request: HtmxHttpRequest, token_id: int) -> HttpResponse:
    if api_token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked: calls with it are refused from now on.")
    else:
        messages.error(request, "No such token of yours, or it was already revoked.")
    return redirect("portfolio:api_tokens")
