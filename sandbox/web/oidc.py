"""Sign-in through an external OpenID Connect provider, in the browser.

``GET /auth/oidc/login`` sends the browser to the provider; ``GET /auth/oidc/callback``
finishes the authorization-code flow and sets the same session cookie as the password
sign-in. Refusals are rendered as error pages naming the rule and the article. Who may
sign in that way is :mod:`sandbox.api.routes.oidc`; the protocol is
:mod:`sandbox.identity.oidc`.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Query, Request
from fastapi.responses import RedirectResponse

from sandbox.accounts.models import Role
from sandbox.accounts.second_factor import requires_second_factor
from sandbox.accounts.service import SESSION_HOURS, open_session
from sandbox.audit.record import record
from sandbox.errors import SandboxError
from sandbox.http.deps import SESSION_COOKIE, DbDep, SettingsDep
from sandbox.identity.oidc import (
    LOGIN_MINUTES,
    OidcConfig,
    PendingLogin,
    consume_attempt,
    discover,
    linked_user,
    redeem_code,
    refuse,
    start_login,
)
from sandbox.identity.oidc_mfa import check_second_factor_claims
from sandbox.web.rendering import page_router, see_other, set_cookie
from sandbox.web.return_to import HOME, NEXT, same_site_path

STATE_COOKIE = "sandbox_oidc_state"
#: Where the sign-in returns to (``/signin?next=``), kept while the provider is visited.
NEXT_COOKIE = "sandbox_oidc_next"
HTTP_TIMEOUT = 10.0

router = page_router()


@router.get("/auth/oidc/login")
def oidc_login(
    db: DbDep, settings: SettingsDep, next_page: Annotated[str, Query(alias=NEXT)] = ""
) -> RedirectResponse:
    """Send the browser to the provider; the page to return to waits in a cookie of this
    attempt's lifetime (a same-site path only, checked again on return)."""
    config = OidcConfig.from_settings(settings)
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        metadata = discover(config, http)
    with db.tx() as session:
        url, state = start_login(session=session, config=config, metadata=metadata)
    response = RedirectResponse(url, status_code=302)
    set_cookie(response, settings, STATE_COOKIE, state, max_age=LOGIN_MINUTES * 60)
    if return_to := same_site_path(next_page):
        set_cookie(response, settings, NEXT_COOKIE, return_to, max_age=LOGIN_MINUTES * 60)
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    state: Annotated[str, Query()] = "",
    code: Annotated[str, Query()] = "",
    error: Annotated[str, Query()] = "",
) -> RedirectResponse:
    config = OidcConfig.from_settings(settings)
    # A state that is not this browser's burns nothing and records nothing: bad input
    # changes nothing. From here on the attempt is used up, so a refusal is recorded.
    with db.tx() as session:
        pending = consume_attempt(
            session, state=state, cookie_state=request.cookies.get(STATE_COOKIE, "")
        )
    subject = None
    try:
        if error or not code:
            raise refuse("oidc-denied", "the identity provider did not sign you in")
        claims = _redeem(config, code, pending)
        subject = claims["sub"]
        with db.tx() as session:
            user = linked_user(session, issuer=config.issuer, subject=subject)
            if requires_second_factor(session, user, settings):
                check_second_factor_claims(claims, settings)
            token = open_session(session, user, {"method": "oidc", "issuer": config.issuer})
            home = HOME[Role(user.role)]
    except SandboxError as exc:
        with db.tx() as session:
            record(
                session,
                actor="anonymous",
                action="user.oidc_sign_in_refused",
                object=f"oidc:{config.issuer}",
                details={"rule": exc.rule, "subject": subject},
            )
        raise
    response = see_other(same_site_path(request.cookies.get(NEXT_COOKIE, "")) or home)
    set_cookie(response, settings, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)
    response.delete_cookie(STATE_COOKIE, path="/")
    response.delete_cookie(NEXT_COOKIE, path="/")
    return response


def _redeem(config: OidcConfig, code: str, pending: PendingLogin) -> dict:
    with httpx.Client(timeout=HTTP_TIMEOUT) as http:
        metadata = discover(config, http)
        return redeem_code(config=config, metadata=metadata, code=code, pending=pending, http=http)
