"""Company sign-in: OpenID Connect (authorization code flow with PKCE) through
mozilla-django-oidc, on when OIDC_ISSUER is set (config/settings.py, README "Company
sign-in (OIDC)").

The library does the flow (state, nonce, PKCE verifier in the session; the code exchange;
the id_token's signature against the provider's JWKS; the userinfo call). This module adds
what Portfolio needs on top:

- the endpoints come from the issuer's discovery document (the library wants them set one
  by one), fetched at the first sign-in and kept for an hour;
- the id_token must name our issuer and our client (the library checks neither);
- a user is matched by e-mail whatever its case, and only by a verified e-mail;
- the Portfolio groups named in OIDC_ROLE_GROUPS follow the provider's groups at every
  sign-in;
- with OIDC off, its URLs are 404s.

The discovery fetch is the one HTTP call made here rather than in `integrations/`; the
library's own calls (token, JWKS, userinfo) use `requests` inside the library.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend, default_username_algo
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from portfolio.auth import RoleBackend
from portfolio.models import Team
from portfolio.roles import GROUP_ADMIN

logger = logging.getLogger(__name__)

# How long a discovery document is used before it is fetched again (providers rotate keys
# through the JWKS, which the library fetches at each sign-in, not through this document).
DISCOVERY_TTL_SECONDS = 3600
_REQUIRED_METADATA = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
_discovery_lock = threading.Lock()
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}


class OIDCDiscoveryError(Exception):
    """The provider's discovery document could not be read or does not fit."""


def provider_metadata() -> dict[str, Any]:
    """The discovery document of settings.OIDC_ISSUER (cached per issuer)."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    with _discovery_lock:
        cached = _discovery.get(issuer)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise OIDCDiscoveryError(f"cannot read {url}: {exc}") from exc
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
        # OpenID Connect Discovery 1.0, section 4.3: the issuer must be the one asked.
        raise OIDCDiscoveryError(f"{url} names another issuer: {document.get('issuer')!r}")
    missing = [key for key in _REQUIRED_METADATA if not document.get(key)]
    if missing:
        raise OIDCDiscoveryError(f"{url} lacks {', '.join(missing)}")
    with _discovery_lock:
        _discovery[issuer] = (time.monotonic(), document)
    return document


def _email_verified(claims: dict[str, Any]) -> bool:
    # Some providers send the boolean as a string.
    return claims.get("email_verified") in (True, "true", "True")


def portfolio_groups_for(claims: dict[str, Any]) -> dict[str, bool]:
    """Portfolio group -> whether the claims' provider groups grant it, for every group
    named in OIDC_ROLE_GROUPS (the others are not the provider's to decide)."""
    provider_groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(provider_groups, str):
        provider_groups = [provider_groups]
    held = {str(group) for group in provider_groups}
    return {group: bool(held & set(mapped)) for group, mapped in settings.OIDC_ROLE_GROUPS.items()}


def _provider_groups(claims: dict[str, Any]) -> set[str]:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    return {str(g) for g in ([groups] if isinstance(groups, str) else groups)}


def oidc_user_teams_sync(*, user: AbstractBaseUser, claims: dict[str, Any]) -> None:
    """Join and leave the teams named in OIDC_TEAM_GROUPS (as one of their TAMs) as the
    provider's groups say; a team named there but missing in Portfolio is logged."""
    mapping = settings.OIDC_TEAM_GROUPS
    if not mapping:
        return
    held = _provider_groups(claims)
    teams = {team.name: team for team in Team.objects.filter(name__in=mapping)}
    for name in sorted(set(mapping) - set(teams)):
        logger.warning("OIDC_TEAM_GROUPS names team %r, which does not exist", name)
    member_of = set(
        Team.tams.through.objects.filter(user_id=user.pk, team__name__in=mapping).values_list(
            "team__name", flat=True
        )
    )
    for name, team in teams.items():
        wanted = bool(held & mapping[name])
        if wanted and name not in member_of:
            team.tams.add(user)
        elif not wanted and name in member_of:
            team.tams.remove(user)


def oidc_user_groups_sync(*, user: AbstractBaseUser, claims: dict[str, Any]) -> None:
    """Join and leave the mapped Portfolio groups (and teams) as the provider's groups say."""
    oidc_user_teams_sync(user=user, claims=claims)
    wanted = portfolio_groups_for(claims)
    if not wanted:
        return
    groups = {g.name: g for g in Group.objects.filter(name__in=wanted)}
    current = set(user.groups.filter(name__in=wanted).values_list("name", flat=True))  # type: ignore[attr-defined]
    join = [groups[name] for name, on in wanted.items() if on and name not in current]
    leave = [groups[name] for name, on in wanted.items() if not on and name in current]
    if join:
        user.groups.add(*join)  # type: ignore[attr-defined]
    if leave:
        user.groups.remove(*leave)  # type: ignore[attr-defined]
    if join or leave:
        logger.info(
            "OIDC sign-in of user %s: joined %s, left %s",
            user.pk,
            [g.name for g in join],
            [g.name for g in leave],
        )
    # Django admin is where admins edit rule sets and teams: the Admin role from the
    # provider opens it, losing the role closes it (a superuser is left as they are).
    admin = wanted.get(GROUP_ADMIN)
    if admin is not None and not getattr(user, "is_superuser", False) and user.is_staff != admin:
        user.is_staff = admin
        user.save(update_fields=["is_staff"])
    # portfolio.roles caches group names on the user object.
    user.__dict__.pop("_portfolio_group_names", None)


class OIDCBackend(OIDCAuthenticationBackend):
    """Signs in the user the provider vouches for, by verified e-mail."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No HTTP and no discovery here: Django builds the backends for every
        # authenticate() (password sign-ins too) and this one for every request of a user
        # it signed in (get_user). The endpoints are filled in by authenticate().
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.OIDC_OP_TOKEN_ENDPOINT = ""  # nosec B105 # a URL (from discovery), no password
        self.OIDC_OP_USER_ENDPOINT = ""
        self.OIDC_OP_JWKS_ENDPOINT = ""
        self.UserModel = get_user_model()

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        if attr == "OIDC_TIMEOUT":
            return settings.OIDC_TIMEOUT
        return OIDCAuthenticationBackend.get_settings(attr, *args)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        # The callback view passes nonce and code_verifier; a password sign-in passes
        # username and password and is none of this backend's business.
        if not settings.OIDC_ENABLED or request is None or "nonce" not in kwargs:
            return None
        try:
            metadata = provider_metadata()
            self.OIDC_OP_TOKEN_ENDPOINT = metadata["token_endpoint"]
            self.OIDC_OP_USER_ENDPOINT = metadata["userinfo_endpoint"]
            self.OIDC_OP_JWKS_ENDPOINT = metadata["jwks_uri"]
            return super().authenticate(request, **kwargs)
        except (
            OIDCDiscoveryError,
            SuspiciousOperation,
            jwt.PyJWTError,
            requests.RequestException,
        ) as exc:
            logger.warning("OIDC sign-in refused: %s", exc)
            return None

    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        # RoleBackend's: the roles in the same query, and an inactive user's session ends
        # (the library's would keep it).
        return RoleBackend.get_user(self, user_id)  # type: ignore[arg-type]

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> AbstractBaseUser | None:
        self._check_id_token(payload)
        with transaction.atomic():
            return super().get_or_create_user(access_token, id_token, payload)

    def _check_id_token(self, payload: dict[str, Any]) -> None:
        """OpenID Connect Core 1.0, 3.1.3.7: the id_token is ours, from our issuer, and
        dated (the signature, nonce and expiry the library and PyJWT have checked)."""
        if str(payload.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER.rstrip("/"):
            raise SuspiciousOperation(f"id_token from another issuer: {payload.get('iss')!r}")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("id_token for another client")
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("id_token authorised for another client")
        if "exp" not in payload or "iat" not in payload:
            raise SuspiciousOperation("id_token without exp or iat")

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The id_token's claims, overlaid with the userinfo endpoint's (some providers
        put groups in one only)."""
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            # OpenID Connect Core 1.0, 5.3.2: otherwise the answer must not be used.
            raise SuspiciousOperation("userinfo is about another subject than the id_token")
        return {**payload, **userinfo}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not claims.get("email"):
            logger.warning("OIDC sign-in refused: no e-mail claim")
            return False
        if not _email_verified(claims):
            # An unverified address could be anyone's: never match or create by it.
            logger.warning("OIDC sign-in refused: e-mail %s is not verified", claims["email"])
            return False
        domain = str(claims["email"]).rsplit("@", 1)[-1].lower()
        allowed = settings.OIDC_ALLOWED_EMAIL_DOMAINS
        if allowed and domain not in allowed:
            logger.warning("OIDC sign-in refused: e-mail domain %s is not allowed", domain)
            return False
        return True

    def create_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        email = claims["email"].strip()
        username = email.lower()
        if self.UserModel.objects.filter(username__iexact=username).exists():
            username = default_username_algo(email)
        user = self.UserModel.objects.create_user(
            username,
            email=email,
            first_name=str(claims.get("given_name", ""))[:150],
            last_name=str(claims.get("family_name", ""))[:150],
        )
        logger.info("OIDC sign-in created user %s (%s)", user.pk, username)
        oidc_user_groups_sync(user=user, claims=claims)
        return user

    def update_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> AbstractBaseUser:
        oidc_user_groups_sync(user=user, claims=claims)
        return user


def _failure_message(request: HttpRequest) -> None:
    messages.error(
        request,
        f"Sign-in with {settings.OIDC_PROVIDER_NAME} did not succeed. If it keeps failing, "
        "ask a Portfolio admin (your account there needs a verified e-mail address).",
    )


class OIDCAuthenticateView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorization endpoint (state, nonce, PKCE)."""

    def __init__(self, **kwargs: Any) -> None:
        # The library reads the endpoint here; it is discovered in get().
        View.__init__(self, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Company sign-in is not configured.")
        try:
            metadata = provider_metadata()
        except OIDCDiscoveryError as exc:
            logger.error("OIDC discovery failed: %s", exc)
            messages.error(
                request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached; try again later."
            )
            return redirect(settings.LOGIN_URL)
        self.OIDC_OP_AUTH_ENDPOINT = metadata["authorization_endpoint"]
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: signs in, or back to the login page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Company sign-in is not configured.")
        return super().get(request)

    @property
    def failure_url(self) -> str:
        return resolve_url(settings.LOGIN_URL)

    def login_failure(self) -> HttpResponseRedirect:
        _failure_message(self.request)
        return super().login_failure()


class LoginView(auth_views.LoginView):
    """Django's login page, with the "Sign in with ..." button when OIDC is on."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME if settings.OIDC_ENABLED else ""
        context["password_login"] = password_login_enabled()
        return context

    def post(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not password_login_enabled():
            return self.render_to_response(self.get_context_data(), status=403)
        return super().post(request, *args, **kwargs)


def password_login_enabled() -> bool:
    """Local passwords are off only when OIDC is on and PASSWORD_LOGIN_ENABLED is false."""
    return settings.PASSWORD_LOGIN_ENABLED or not settings.OIDC_ENABLED
