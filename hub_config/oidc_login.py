"""Hub sign-in through the same OpenID Connect provider as the platform (the alternative
to :class:`hub_config.auth.ControlPlaneAuthenticator`'s passwords).

The hub runs oauthenticator's ``GenericOAuthenticator`` against the provider;
the provider's subject is not a hub username, so :func:`platform_account_hook`
asks the platform which account the operator linked to it
(``POST /api/hub/oidc-user``, hub token). The platform answers only for linked
researchers, so the hub's names stay the platform's usernames (which the
spawn authorization and the agreement's ``researchers`` use) and no provider,
operator or authority ever gets a hub account. To switch, install
``oauthenticator`` in the hub image and replace the authenticator lines of
``jupyterhub_config.py`` with::

    # from oauthenticator.generic import GenericOAuthenticator
    # from hub_config.oidc_login import platform_account_hook
    # c.JupyterHub.authenticator_class = GenericOAuthenticator
    # c.GenericOAuthenticator.client_id = os.environ["SANDBOX_HUB_OIDC_CLIENT_ID"]
    # c.GenericOAuthenticator.client_secret = os.environ["SANDBOX_HUB_OIDC_CLIENT_SECRET"]
    # c.GenericOAuthenticator.oauth_callback_url = hub.public_url + "/hub/oauth_callback"
    # c.GenericOAuthenticator.authorize_url = ISSUER + "/authorize"   # from discovery
    # c.GenericOAuthenticator.token_url = ISSUER + "/token"
    # c.GenericOAuthenticator.userdata_url = ISSUER + "/userinfo"
    # c.GenericOAuthenticator.scope = ["openid"]
    # c.GenericOAuthenticator.username_claim = "sub"
    # c.GenericOAuthenticator.allow_all = True      # the hook below decides
    # c.GenericOAuthenticator.admin_users = set()   # never a hub admin (R16)
    # c.GenericOAuthenticator.post_auth_hook = platform_account_hook(
    #     hub.platform_url, hub.platform_token, ISSUER)

``ISSUER`` is the platform's ``SANDBOX_OIDC_ISSUER``; the hub is a second client
registered at the provider. Both sign-ins then reach the same platform account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

AuthModel = dict[str, Any]
PostAuthHook = Callable[[Any, Any, AuthModel], Awaitable[AuthModel | None]]


def platform_account_hook(
    platform_url: str, token: str, issuer: str, *, timeout: float = 10.0
) -> PostAuthHook:
    """A ``post_auth_hook`` renaming the provider's subject to the linked platform account;
    ``None`` (sign-in refused) when the platform refuses."""
    url = platform_url.rstrip("/") + "/api/hub/oidc-user"

    async def hook(_authenticator: Any, _handler: Any, auth: AuthModel) -> AuthModel | None:
        oauth_user = (auth.get("auth_state") or {}).get("oauth_user") or {}
        subject = oauth_user.get("sub") or auth["name"]
        async with httpx.AsyncClient(timeout=timeout) as client:
            answer = await client.post(
                url,
                json={"issuer": issuer, "subject": subject},
                headers={"Authorization": f"Bearer {token}"},
            )
        if answer.status_code in (403, 404):
            return None
        answer.raise_for_status()
        return {**auth, "name": answer.json()["username"], "admin": False}

    return hook
