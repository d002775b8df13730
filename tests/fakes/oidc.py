"""A loopback OpenID Connect provider for tests.

Speaks what an authorization code flow with PKCE needs, as real providers do:

- `GET /.well-known/openid-configuration`: the discovery document;
- `GET /authorize`: checks client_id, response_type=code, the registered redirect_uri and a
  S256 code_challenge, "signs in" the user set with `sign_in(...)` and answers 302 to the
  redirect_uri with `code` and `state` (the test reads the Location and calls it);
- `POST /token`: client authentication by client_secret_post or HTTP Basic, a single-use
  code for that client and redirect_uri, the PKCE code_verifier; answers an access token
  and an RS256-signed id_token (iss, sub, aud, exp, iat, nonce, email, email_verified,
  groups);
- `GET /jwks`: the public key; `GET /userinfo`: the user's claims for a Bearer token.

Switches: `id_token_overrides` changes claims of the next id_tokens (a wrong `aud`, say).
`requests` lists (method, path) of every request; `token_requests` the token forms.

Use the `fake_oidc` fixture: it starts the server and points settings.OIDC_* at it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "portfolio-client"
CLIENT_SECRET = "portfolio-client-secret"
REDIRECT_URI = "http://testserver/accounts/oidc/callback/"
ROLE_GROUPS = {"TAM": {"cs-tams"}, "Manager": {"cs-managers"}, "Admin": {"portfolio-admins"}}
KID = "fake-key-1"


@dataclass
class FakeOIDCState:
    # The user the next /authorize signs in (None: the provider refuses, access_denied).
    user: dict[str, Any] | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    # Sign the next id_tokens with another key than the one the JWKS publishes.
    forge_signature: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)


class FakeOIDC:
    """The server; `state` may be inspected and changed directly by tests."""

    def __init__(self, *, redirect_uri: str = REDIRECT_URI) -> None:
        self.state = FakeOIDCState()
        self.redirect_uri = redirect_uri
        self.lock = threading.RLock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeOIDC:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sign_in(
        self,
        email: str,
        *,
        email_verified: Any = True,
        groups: list[str] | None = None,
        sub: str | None = None,
        **claims: Any,
    ) -> dict[str, Any]:
        """The user the provider signs in at the next /authorize."""
        user = {
            "sub": sub or hashlib.sha256(email.lower().encode()).hexdigest()[:20],
            "email": email,
            "email_verified": email_verified,
            "groups": list(groups or []),
            **claims,
        }
        with self.lock:
            self.state.user = user
        return user

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}

    def id_token(self, user: dict[str, Any], nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            **({"nonce": nonce} if nonce else {}),
            **user,
            **self.state.id_token_overrides,
        }
        key = self.key
        if self.state.forge_signature:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _make_handler(fake: FakeOIDC) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with fake.lock:
                fake.state.requests.append(("GET", parts.path))
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                return self._json(200, fake.discovery())
            if parts.path == "/jwks":
                return self._json(200, fake.jwks())
            if parts.path == "/authorize":
                return self._authorize(query)
            if parts.path == "/userinfo":
                return self._userinfo()
            return self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            with fake.lock:
                fake.state.requests.append(("POST", parts.path))
            if parts.path != "/token":
                return self._json(404, {"error": "not_found"})
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            return self._token(form)

        def _authorize(self, query: dict[str, str]) -> None:
            # Errors about the client or redirect_uri are shown, never redirected (RFC 6749
            # 4.1.2.1); the others go back to the client with error=...
            if query.get("client_id") != CLIENT_ID:
                return self._json(400, {"error": "invalid_client"})
            redirect_uri = query.get("redirect_uri")
            if redirect_uri != fake.redirect_uri:
                return self._json(400, {"error": "invalid_redirect_uri", "got": redirect_uri})
            state = query.get("state", "")

            def back(**params: str) -> None:
                self._redirect(f"{redirect_uri}?{urlencode({**params, 'state': state})}")

            if query.get("response_type") != "code" or "openid" not in query.get("scope", ""):
                return back(error="invalid_request")
            if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
                return back(error="invalid_request", error_description="PKCE S256 required")
            with fake.lock:
                user = fake.state.user
                if user is None:
                    return back(error="access_denied")
                code = secrets.token_urlsafe(24)
                fake.state.codes[code] = {
                    "user": dict(user),
                    "redirect_uri": redirect_uri,
                    "nonce": query.get("nonce"),
                    "code_challenge": query["code_challenge"],
                }
            return back(code=code)

        def _client_credentials(self, form: dict[str, str]) -> tuple[str | None, str | None]:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                return client_id, secret
            return form.get("client_id"), form.get("client_secret")

        def _token(self, form: dict[str, str]) -> None:
            with fake.lock:
                fake.state.token_requests.append(dict(form))
                client_id, secret = self._client_credentials(form)
                if client_id != CLIENT_ID or secret != CLIENT_SECRET:
                    return self._json(401, {"error": "invalid_client"})
                if form.get("grant_type") != "authorization_code":
                    return self._json(400, {"error": "unsupported_grant_type"})
                grant = fake.state.codes.pop(form.get("code", ""), None)  # single use
                if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    return self._json(400, {"error": "invalid_grant"})
                verifier = form.get("code_verifier", "")
                if not verifier or _s256(verifier) != grant["code_challenge"]:
                    return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                access_token = secrets.token_urlsafe(24)
                fake.state.access_tokens[access_token] = grant["user"]
                id_token = fake.id_token(grant["user"], grant["nonce"])
            return self._json(
                200,
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                },
                headers={"Cache-Control": "no-store"},
            )

        def _userinfo(self) -> None:
            auth = self.headers.get("Authorization", "")
            with fake.lock:
                user = fake.state.access_tokens.get(auth.removeprefix("Bearer ").strip())
            if not auth.startswith("Bearer ") or user is None:
                return self._json(
                    401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "Bearer"}
                )
            return self._json(200, user)

    return Handler


@pytest.fixture
def fake_oidc(settings) -> Iterator[FakeOIDC]:
    """A running fake provider with Portfolio's OIDC settings pointed at it."""
    fake = FakeOIDC().start()
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = fake.url
    settings.OIDC_PROVIDER_NAME = "Acme SSO"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_ROLE_GROUPS = {name: set(groups) for name, groups in ROLE_GROUPS.items()}
    settings.OIDC_GROUPS_CLAIM = "groups"
    settings.OIDC_TEAM_GROUPS = {}
    settings.OIDC_CREATE_USER = True
    backends = [b for b in settings.AUTHENTICATION_BACKENDS if b != "portfolio.oidc.OIDCBackend"]
    settings.AUTHENTICATION_BACKENDS = [*backends, "portfolio.oidc.OIDCBackend"]
    try:
        yield fake
    finally:
        fake.stop()
