"""A small but correct OpenID Connect provider for tests, served by uvicorn on 127.0.0.1.

It implements what the platform and the hub rely on: discovery, a JWKS with
one RS256 key, an authorization endpoint that issues a single-use code bound
to the client, redirect URI, PKCE challenge and nonce (optional, as in OIDC
Core 3.1.2.1; the platform always sends one), a token endpoint that
authenticates the client (client_secret_basic), checks the PKCE verifier and
returns an RS256-signed ID token, and a userinfo endpoint for the access token.
Two clients are registered: the platform and the hub.

The person "signed in at the provider" is :attr:`LocalProvider.subject`. A test
makes the provider misbehave in one way at a time through :attr:`quirks`
(another audience, another nonce, an expired token, a foreign signing key, an
HMAC signature), so that each platform check is shown to refuse exactly that, and says
how the person signed in (``amr``, ``acr``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

CLIENT_ID = "sandbox-platform"
CLIENT_SECRET = "client-secret-for-tests-only-0123456789"
HUB_CLIENT_ID = "sandbox-hub"
HUB_CLIENT_SECRET = "hub-client-secret-for-tests-only-0123"
CLIENTS = {CLIENT_ID: CLIENT_SECRET, HUB_CLIENT_ID: HUB_CLIENT_SECRET}
KID = "test-key-1"


@dataclass
class Quirks:
    """One deliberate fault in the next ID tokens (all off by default)."""

    audience: str | None = None
    nonce: str | None = None
    lifetime_seconds: int = 300
    issued_ago_seconds: int = 0
    foreign_key: bool = False
    hmac_with_client_secret: bool = False
    #: How the person signed in at the provider (RFC 8176), and the assurance level.
    amr: list[str] | None = None
    acr: str | None = None


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    subject: str


@dataclass
class LocalProvider:
    issuer: str = ""
    subject: str = "subject-alice"
    quirks: Quirks = field(default_factory=Quirks)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    grants: dict[str, Grant] = field(default_factory=dict)
    #: access token -> subject, for the userinfo endpoint
    access_tokens: dict[str, str] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}

    def id_token(self, grant: Grant) -> str:
        q = self.quirks
        now = int(time.time()) - q.issued_ago_seconds
        claims = {
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": q.audience or grant.client_id,
            "iat": now,
            "exp": now + q.lifetime_seconds,
        }
        if q.nonce or grant.nonce:
            claims["nonce"] = q.nonce or grant.nonce
        if q.amr is not None:
            claims["amr"] = q.amr
        if q.acr is not None:
            claims["acr"] = q.acr
        if q.hmac_with_client_secret:
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": KID})
        key = self.key
        if q.foreign_key:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return self.jwks()

        @app.get("/authorize")
        def authorize(request: Request) -> RedirectResponse:
            p = request.query_params
            if (
                p.get("response_type") != "code"
                or p.get("client_id") not in CLIENTS
                or "openid" not in p.get("scope", "").split()
                or p.get("code_challenge_method") != "S256"
                or not all(p.get(k) for k in ("redirect_uri", "state", "code_challenge"))
            ):
                raise HTTPException(400, "invalid_request")
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                p["client_id"], p["redirect_uri"], p["code_challenge"], p.get("nonce"), self.subject
            )
            query = urlencode({"code": code, "state": p["state"]})
            return RedirectResponse(f"{p['redirect_uri']}?{query}", status_code=302)

        @app.post("/token")
        def token(
            request: Request,
            grant_type: Annotated[str, Form()],
            code: Annotated[str, Form()],
            redirect_uri: Annotated[str, Form()],
            code_verifier: Annotated[str, Form()],
        ) -> JSONResponse:
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            client_id, _, secret = base64.b64decode(encoded or "Og==").decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
            if scheme.lower() != "basic" or CLIENTS.get(client_id) != secret:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.grants.pop(code, None)  # single use
            digest = hashlib.sha256(code_verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                grant_type != "authorization_code"
                or grant is None
                or grant.client_id != client_id
                or grant.redirect_uri != redirect_uri
                or grant.challenge != challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            access_token = secrets.token_urlsafe(16)
            self.access_tokens[access_token] = grant.subject
            return JSONResponse(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": self.id_token(grant),
                },
                headers={"Cache-Control": "no-store"},
            )

        @app.get("/userinfo")
        def userinfo(request: Request) -> JSONResponse:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            subject = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
            if subject is None:
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse({"sub": subject})

        return app


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@contextmanager
def running_provider() -> Iterator[LocalProvider]:
    """A fresh provider on loopback; its issuer is known once the port is."""
    provider = LocalProvider()
    app = provider.app()
    with serving(app) as url:
        provider.issuer = url
        yield provider
