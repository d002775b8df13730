"""The workspace's pages: the inbox (done / snooze), the global search, saved views.

One URL serves the full page and, for htmx requests, the partial that changed; every
form also works without JavaScript (a redirect back)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from portfolio.htmx import HtmxHttpRequest
from portfolio.http import safe_next
from workspace import inbox as inbox_selectors
from workspace import search as search_selectors
from workspace import services
from workspace.forms import ItemForm, SavedViewForm, SnoozeForm
from workspace.models import SavedView

# --- Inbox ------------------------------------------------------------------------------


def _page_number(request: HtmxHttpRequest) -> int:
    value = request.GET.get("page", "1")
    return int(value) if value.isdigit() and len(value) < 4 else 1


def _inbox_context(request: HtmxHttpRequest, *, page: int, errors: dict | None = None) -> dict:
    box = inbox_selectors.inbox_for_user(request.user, page=page)
    return {
        "inbox": box,
        "today": timezone.localdate(),
        "kinds": inbox_selectors.KINDS,
        "errors": errors or {},
        "prev_url": f"?page={box.page - 1}" if box.page > 1 else "",
        "next_url": f"?page={box.page + 1}" if box.page < box.pages else "",
    }


@require_GET
@vary_on_headers("HX-Request")
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    """Everything due for the user, the most urgent first."""
    context = _inbox_context(request, page=_page_number(request))
    if request.htmx:
        return render(request, "workspace/inbox.html#items", context)
    return render(request, "workspace/inbox.html", context)


def _item_write(request: HtmxHttpRequest, form_class, action) -> HttpResponse:
    """Validate, check the item is one the user sees (404 otherwise), act, re-render."""
    form = form_class(request.POST)
    page = _page_number(request)
    status, errors = 200, {}
    if form.is_valid():
        key = form.cleaned_data["key"]
        if inbox_selectors.item_for_user(request.user, key) is None:
            raise Http404("No such item in your inbox.")
        try:
            action(key, form.cleaned_data)
        except ValidationError as exc:  # the service's: shown on the item
            errors = {key: exc.messages}
    else:
        key = request.POST.get("key", "")
        errors = {key: [e for errs in form.errors.values() for e in errs]}
    if errors:
        status = 200 if request.htmx else 400
    if request.htmx:
        context = _inbox_context(request, page=page, errors=errors)
        return render(request, "workspace/inbox.html#items", context, status=status)
    if not errors:
        return redirect(safe_next(request, reverse("workspace:inbox")))
    context = _inbox_context(request, page=page, errors=errors)
    return render(request, "workspace/inbox.html", context, status=status)


@require_POST
def inbox_done(request: HtmxHttpRequest) -> HttpResponse:
    return _item_write(
        request,
        ItemForm,
        lambda key, data: services.inbox_item_done(user=request.user, key=key),
    )


@require_POST
def inbox_snooze(request: HtmxHttpRequest) -> HttpResponse:
    return _item_write(
        request,
        SnoozeForm,
        lambda key, data: services.inbox_item_snooze(
            user=request.user, key=key, until=data["until"]
        ),
    )


# --- Search -----------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def search(request: HtmxHttpRequest) -> HttpResponse:
    """Accounts, contacts, triage issues and collaboration projects the user may see."""
    term = request.GET.get("q", "")[: search_selectors.MAX_TERM]
    results = search_selectors.search_for_user(request.user, term)
    context = {"q": term, "results": results}
    if request.htmx:
        return render(request, "workspace/search.html#results", context)
    return render(request, "workspace/search.html", context)


# --- Saved views ------------------------------------------------------------------------


@require_POST
def saved_view_create(request: HtmxHttpRequest) -> HttpResponse:
    """Save the accounts table's current query string under a name. A bad name comes back
    on the form with what was typed (the htmx fragment, or a page of its own)."""
    form = SavedViewForm(request.POST)
    back = safe_next(request, reverse("ui:home"))
    if not form.is_valid():
        context = {"save_form": form, "next": back}
        if request.htmx:
            return render(request, "workspace/saved_views.html#save_form", context)
        return render(request, "workspace/saved_views.html", context, status=400)
    view = services.saved_view_save(owner=request.user, **form.cleaned_data)
    messages.success(request, f"Saved the view “{view.name}”.")
    url = f"{back.split('?')[0]}?{view.querystring}" if view.querystring else back.split("?")[0]
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_POST
def saved_view_delete(request: HtmxHttpRequest, view_id: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=view_id, owner=request.user)
    services.saved_view_delete(view=view)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect(safe_next(request, reverse("ui:home")))
