"""The accounts table's bulk bar (managers and admins): one POST URL for the three actions.

Plain form posts (no htmx), so the bar works without JavaScript; a bad request comes back
as the same bar with the selection kept and an error beside the field at fault.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from portfolio.htmx import HtmxHttpRequest
from portfolio.http import safe_next
from portfolio.models import Account
from portfolio.selectors import tams_for_user
from portfolio.services import account_tam_bulk_assign
from ui import bulk, selectors
from ui.views import _csv_lines


@require_POST
def accounts_bulk(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Reassign TAM, what-if or export for the ticked accounts (or all matching the
    filter). Every account is checked against the user's scope (403 when one is not)."""
    tam_id = _owner_id(request)
    selection = bulk.selection_from_post(request.user, request.POST, tam_id=tam_id)
    action = request.POST.get("action", "")
    errors = dict(selection.errors)
    if action not in bulk.ACTIONS:
        errors.setdefault("action", ["Choose what to do with the selection."])
    if errors:
        return _page(request, selection, errors=errors, status=400)
    if action == "export":
        return _export(selection.ids)
    if action == "whatif":
        try:
            result = bulk.selection_whatif(
                ids=selection.ids,
                parameter=request.POST.get("parameter", ""),
                raw=request.POST.get("value", ""),
            )
        except ValidationError as exc:
            return _page(request, selection, errors=exc.message_dict, status=400)
        return _page(request, selection, whatif=result)
    tam, problem = bulk.new_tam(request.user, request.POST.get("new_tam", ""))
    if tam is None:
        return _page(request, selection, errors={"new_tam": [problem]}, status=400)
    mass = selection.all_matching or len(selection.ids) > bulk.CONFIRM_OVER
    if mass and not request.POST.get("confirm"):
        return _page(request, selection, confirm_tam=tam)
    changed = account_tam_bulk_assign(account_ids=selection.ids, tam=tam, user=request.user)
    messages.success(
        request,
        f"{len(changed)} account{'s' if len(changed) != 1 else ''} reassigned to "
        f"{tam.get_full_name() or tam.get_username()}; Salesforce is told by the write-back."
        + (
            f" {len(selection.ids) - len(changed)} already had this TAM."
            if len(changed) < len(selection.ids)
            else ""
        ),
    )
    return redirect(_back(request))


def _owner_id(request: HtmxHttpRequest) -> int | None:
    """The TAM whose dashboard the bar was on (their book only), if any."""
    raw = request.POST.get("tam", "")
    if not raw.isdigit():
        return None
    return get_object_or_404(tams_for_user(request.user), pk=int(raw)).pk


def _back(request: HtmxHttpRequest) -> str:
    return safe_next(request, reverse("ui:home"))


def _page(request: HtmxHttpRequest, selection: bulk.Selection, *, status: int = 200, **extra):
    ids = [] if "all_matching" in selection.errors else selection.ids
    accounts = list(Account.objects.filter(pk__in=ids).order_by("name", "pk")[: bulk.BULK_MAX])
    context = {
        "selection": selection,
        "selected": accounts,
        "back_url": _back(request),
        "owner_id": _owner_id(request),
        "posted": request.POST,
        "tams": tams_for_user(request.user).order_by("first_name", "username"),
        "parameters": bulk.whatif_parameter_choices(),
        "errors": {},
        **extra,
    }
    return render(request, "ui/bulk.html", context, status=status)


def _export(ids: list[int]) -> StreamingHttpResponse:
    rows = selectors.accounts_with_table_columns(Account.objects.filter(pk__in=ids)).order_by(
        "name", "pk"
    )
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="accounts-selection-{stamp}.csv"'
    return response
