"""CSRF protection for every state-changing form: a signed double-submit token.

The browser holds a random nonce in an httponly cookie; each form carries
HMAC(secret_key, nonce + session cookie) in a hidden field. A cross-site page
can make the browser send the cookies but cannot read them, and cannot compute
the HMAC without the platform's secret, so it cannot forge the field. Binding
the token to the session cookie means a token obtained by someone else (or
before signing in) is worthless in this session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from sandbox.errors import PermissionDenied
from sandbox.http.deps import SESSION_COOKIE

CSRF_COOKIE = "sandbox_csrf"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def token_for(secret: str, nonce: str, session: str | None) -> str:
    message = f"{nonce}\0{session or ''}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def request_token(request: Request, nonce: str) -> str:
    """The token a form rendered for this request must carry."""
    secret = request.app.state.settings.secret_key
    return token_for(secret, nonce, request.cookies.get(SESSION_COOKIE))


async def csrf_protect(request: Request) -> None:
    """Router dependency: refuse any non-safe request whose form lacks a valid token."""
    if request.method in SAFE_METHODS:
        return
    nonce = request.cookies.get(CSRF_COOKIE)
    sent = (await request.form()).get(CSRF_FIELD)
    valid = nonce and isinstance(sent, str)
    if not (valid and hmac.compare_digest(sent, request_token(request, nonce))):
        raise PermissionDenied(
            "this form is missing its security token or the token has expired; "
            "reload the page and submit it again",
            rule="csrf",
        )
