"""The request type of a signed-in page, for the views' annotations.

django-htmx's docs and django-stubs' recommend a subclass of HttpRequest that names what the
middleware sets; it has no runtime role (Django builds plain HttpRequests)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """What a view of a signed-in page receives: `request.htmx`, set by HtmxMiddleware,
    and `request.user` a real user, since LoginRequiredMiddleware sends everyone else to
    the sign-in page before a view without `@login_not_required` runs. Those public views
    take a plain `HttpRequest`. (Portfolio uses Django's own user model: AUTH_USER_MODEL
    is not set.)"""

    htmx: HtmxDetails
    user: User
