"""Personal API tokens: issued and revoked by their owner, stored as digests (issue 13).

`api_token_issue` returns the token's text once; only its SHA-256 digest is kept, so a
database dump gives no usable token. `ApiTokenAuthentication` (DRF) reads
`Authorization: Bearer pf_...` (or `Token pf_...`), refuses an expired or revoked token
with a 401 that says which, and notes when the token was last used (at most once a
minute). A read-only token may do everything that stores nothing; an endpoint that stores
data adds `WriteScopeRequired` to its permissions."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from portfolio.models import ApiToken, ApiTokenScope

if TYPE_CHECKING:
    # Not at run time: DRF's APIView reads the authentication classes (this module) while
    # rest_framework.views is being imported.
    from rest_framework.request import Request
    from rest_framework.views import APIView

PREFIX_BYTES = 6  # 8 characters of base64
LIFETIMES_DAYS = (30, 90, 365)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_issue(*, user: User, name: str, scope: str, days: int) -> tuple[ApiToken, str]:
    """A new token for `user`: the row and the token's text, which is never shown again."""
    if scope not in ApiTokenScope.values:
        raise ValueError(f"scope: {scope!r} is not one of {', '.join(ApiTokenScope.values)}")
    if days not in LIFETIMES_DAYS:
        raise ValueError(f"days: {days} is not one of {LIFETIMES_DAYS}")
    name = name.strip()[:100]
    if not name:
        raise ValueError("name: give the token a name (what uses it).")
    prefix = secrets.token_urlsafe(PREFIX_BYTES).replace("_", "x").replace("-", "y")
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=_digest(secret),
        scope=scope,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
    return token, f"pf_{prefix}_{secret}"


def api_token_revoke(*, user: User, token_id: int) -> bool:
    """The owner revokes one of their tokens (another user's is not found)."""
    return bool(
        ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("Bearer", "Token")

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if len(header) != 2 or header[0] not in self.keywords:
            return None
        text = header[1]
        parts = text.split("_", 2)
        if len(parts) != 3 or parts[0] != "pf":
            raise exceptions.AuthenticationFailed("Unknown API token.")
        token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
        if token is None or not hmac.compare_digest(token.digest, _digest(parts[2])):
            raise exceptions.AuthenticationFailed("Unknown API token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired: issue a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class WriteScopeRequired(permissions.BasePermission):
    """For endpoints that store data: a read-only token is refused (403)."""

    message = "This API token is read-only; this endpoint stores data (issue a read-write one)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = getattr(request, "auth", None)
        return not isinstance(token, ApiToken) or token.scope == ApiTokenScope.WRITE
