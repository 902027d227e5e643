"""Hub sign-in through the platform's OpenID Connect provider (instead of
:class:`hub_config.auth.ControlPlaneAuthenticator`'s passwords), switched on by
``SANDBOX_HUB_OIDC_ISSUER``.

The hub runs oauthenticator's ``GenericOAuthenticator`` as a second client of the
provider (authorization code with PKCE, client_secret_basic, the subject from the
userinfo endpoint). The provider's subject is not a hub username, so
:func:`platform_account_hook` asks the platform which account the operator linked
to it (``POST /api/hub/oidc-user``, hub token). The platform answers only for linked
researchers, so the hub's names stay the platform's usernames (which the spawn
authorization and the agreement's ``researchers`` use) and no provider, operator or
authority ever gets a hub account. Both sign-ins reach the same platform account. The ID
token's ``amr`` and ``acr`` go along, so that a researcher who needs a second factor is let
in only when the provider reports one (sandbox/identity/oidc_mfa.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

from hub_config.settings import HubSettings

AuthModel = dict[str, Any]
PostAuthHook = Callable[[Any, Any, AuthModel], Awaitable[AuthModel | None]]


def discover(issuer: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """The provider's endpoints from its discovery document, which must name the same
    issuer (OIDC Discovery 4.3: otherwise another party could answer for it)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = httpx.get(url, timeout=timeout).raise_for_status().json()
    if document.get("issuer") != issuer:
        raise ValueError(f"{url} names issuer {document.get('issuer')!r}, not {issuer!r}")
    return document


def configure(c: Any, hub: HubSettings) -> None:
    """Point the hub's authenticator at the provider; nobody becomes a hub admin (R16)."""
    from oauthenticator.generic import GenericOAuthenticator

    endpoints = discover(hub.oidc_issuer)
    c.JupyterHub.authenticator_class = GenericOAuthenticator
    c.GenericOAuthenticator.client_id = hub.oidc_client_id
    c.GenericOAuthenticator.client_secret = hub.oidc_client_secret
    c.GenericOAuthenticator.oauth_callback_url = hub.public_url.rstrip("/") + "/hub/oauth_callback"
    c.GenericOAuthenticator.authorize_url = endpoints["authorization_endpoint"]
    c.GenericOAuthenticator.token_url = endpoints["token_endpoint"]
    c.GenericOAuthenticator.userdata_url = endpoints["userinfo_endpoint"]
    c.GenericOAuthenticator.basic_auth = True  # client_secret_basic, as the platform does
    c.GenericOAuthenticator.enable_pkce = True
    c.GenericOAuthenticator.scope = ["openid"]
    c.GenericOAuthenticator.username_claim = "sub"
    c.GenericOAuthenticator.login_service = "统一身份认证 / identity provider"
    c.GenericOAuthenticator.post_auth_hook = platform_account_hook(
        hub.platform_url, hub.platform_token, hub.oidc_issuer
    )


def platform_account_hook(
    platform_url: str, token: str, issuer: str, *, timeout: float = 10.0
) -> PostAuthHook:
    """A ``post_auth_hook`` renaming the provider's subject to the linked platform account;
    ``None`` (sign-in refused) when the platform refuses."""
    url = platform_url.rstrip("/") + "/api/hub/oidc-user"

    async def hook(_authenticator: Any, _handler: Any, auth: AuthModel) -> AuthModel | None:
        state = auth.get("auth_state") or {}
        oauth_user = state.get("oauth_user") or {}
        subject = oauth_user.get("sub") or auth["name"]
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(
                url,
                json={"issuer": issuer, "subject": subject, **factor_claims(state)},
                headers={"Authorization": f"Bearer {token}"},
            )
        if answer.status_code in (403, 404):
            return None
        answer.raise_for_status()
        return {**auth, "name": answer.json()["username"], "admin": False}

    return hook


def factor_claims(auth_state: dict[str, Any]) -> dict[str, Any]:
    """The ID token's ``amr`` and ``acr``, which the platform checks for researchers who
    need a second factor. The hub received the token from the provider's token endpoint
    itself, over the connection it verified, so it reads the claims without the signature
    check (OpenID Connect Core 3.1.3.7, item 6)."""
    id_token = auth_state.get("id_token")
    if not id_token:
        return {}
    claims = jwt.decode(id_token, options={"verify_signature": False})
    amr = claims.get("amr")
    return {
        "amr": [m for m in amr if isinstance(m, str)] if isinstance(amr, list) else [],
        "acr": claims["acr"] if isinstance(claims.get("acr"), str) else "",
    }
