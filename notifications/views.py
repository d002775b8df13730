"""The bell, the notifications page, reading marks, preferences and the digest's
unsubscribe link. Every view shows or changes only the signed-in user's own rows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from notifications import bell as bell_cache
from notifications import selectors, services
from notifications.models import Channel, Kind
from notifications.preferences import preference_grid
from portfolio.htmx import HtmxHttpRequest

CHANGED = "notifications-changed"
LIST = "notifications/list.html"


@login_required
@require_GET
def bell(request: HtmxHttpRequest) -> HttpResponse:
    """The unread count in the header, loaded by htmx after a page that did not know it
    (two queries), and kept for the pages that follow (`notifications.bell`)."""
    count = selectors.bell(request.user)
    bell_cache.remember(request.user.pk, count)
    return render(request, f"{LIST}#bell_count", count)


@login_required
@require_GET
def dropdown(request: HtmxHttpRequest) -> HttpResponse:
    items = list(selectors.for_user(request.user)[: selectors.DROPDOWN_LIMIT])
    return render(request, f"{LIST}#dropdown", {"items": items})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def notification_list(request: HtmxHttpRequest) -> HttpResponse:
    """The last 90 days, newest first, PAGE_SIZE a page (keyset-free offset paging: a
    person reads a few pages at most); `?unread=1` only the unread."""
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    unread = request.GET.get("unread") == "1"
    rows = selectors.for_user(request.user)
    if unread:
        rows = rows.filter(read_at__isnull=True)
    start = (page - 1) * selectors.PAGE_SIZE
    items = list(rows[start : start + selectors.PAGE_SIZE + 1])
    context = {
        "items": items[: selectors.PAGE_SIZE],
        "page": page,
        "has_next": len(items) > selectors.PAGE_SIZE,
        "unread": unread,
    }
    template = f"{LIST}#list" if request.htmx else LIST
    return render(request, template, context)


def _back(request: HtmxHttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "notifications:list"
    return redirect(target)


@login_required
@require_POST
def mark_read(request: HtmxHttpRequest, notification_id: int) -> HttpResponse:
    notification = services.notification_mark_read(
        user=request.user, notification_id=notification_id
    )
    if notification is None:
        raise Http404("No such notification of yours.")
    if request.htmx:
        response = render(request, f"{LIST}#item", {"n": notification})
        return trigger_client_event(response, CHANGED)
    return _back(request)


@login_required
@require_POST
def open_notification(request: HtmxHttpRequest, notification_id: int) -> HttpResponse:
    """Mark read and go to the place to act."""
    notification = services.notification_mark_read(
        user=request.user, notification_id=notification_id
    )
    if notification is None:
        raise Http404("No such notification of yours.")
    if notification.url and url_has_allowed_host_and_scheme(
        notification.url, allowed_hosts={request.get_host()}
    ):
        return redirect(notification.url)
    return redirect("notifications:list")


@login_required
@require_POST
def mark_all_read(request: HtmxHttpRequest) -> HttpResponse:
    count = services.notifications_mark_all_read(user=request.user)
    if request.htmx:
        items = list(selectors.for_user(request.user)[: selectors.DROPDOWN_LIMIT])
        response = render(request, f"{LIST}#dropdown", {"items": items})
        return trigger_client_event(response, CHANGED)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return _back(request)


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HtmxHttpRequest) -> HttpResponse:
    """The user's grid of kinds x channels, starting from their role's defaults."""
    error = ""
    status = 200
    if request.method == "POST":
        ticked = [tuple(v.split(":", 1)) for v in request.POST.getlist("enabled") if ":" in v]
        try:
            services.notification_preferences_save(user=request.user, enabled=ticked)  # type: ignore[arg-type]
        except ValidationError as exc:
            error, status = "; ".join(exc.messages), 400
        else:
            messages.success(request, "Notification preferences saved.")
            return redirect("notifications:preferences")
    grid = preference_grid(request.user)
    rows = [
        (kind, label, [(c, c_label, grid[kind][c]) for c, c_label in Channel.choices])
        for kind, label in Kind.choices
    ]
    context = {"rows": rows, "channels": Channel.choices, "error": error}
    return render(request, "notifications/preferences.html", context, status=status)


@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The digest's link: GET asks, POST (with CSRF) switches the digest off."""
    user = services.user_from_unsubscribe_token(token)
    if user is None:
        context = {"invalid": True}
        return render(request, "notifications/unsubscribe.html", context, status=400)
    done = False
    if request.method == "POST":
        services.digest_unsubscribe(user=user)
        done = True
    return render(request, "notifications/unsubscribe.html", {"done": done, "subscriber": user})
