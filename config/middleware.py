"""Project-wide middleware."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

# No inline scripts or handlers anywhere (STYLE.md rule 11), so a strict policy holds.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django admin ships inline scripts; it keeps its own (looser) defaults.
        if not request.path.startswith("/admin/"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class SessionLifetimeMiddleware:
    """Signs a user out after `SESSION_IDLE_TIMEOUT_SECONDS` without a request, and after
    `SESSION_ABSOLUTE_LIFETIME_SECONDS` whatever they do (the session cookie's own age).

    The last-seen stamp is written at most once every `TOUCH_SECONDS`, so a busy user's
    requests do not each write their session."""

    TOUCH_SECONDS = 300

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            session = request.session
            seen = session.get("_seen", now)
            if now - seen > settings.SESSION_IDLE_TIMEOUT_SECONDS:
                logout(request)
                messages.info(request, "You were signed out after a time without activity.")
                return redirect_to_login(request.get_full_path())
            if "_seen" not in session or now - seen > self.TOUCH_SECONDS:
                session["_seen"] = now
        return self.get_response(request)


class PrivateCacheMiddleware:
    """Pages for a signed-in user are never stored by a browser or a proxy
    (`Cache-Control: private, no-store`), unless the view said otherwise."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            patch_cache_control(response, private=True, no_store=True)
        return response
