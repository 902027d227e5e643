"""Sign-in through an external OpenID Connect provider, and who may sign in that way.

Browser routes (``pages``): ``GET /auth/oidc/login`` sends the browser to the
provider; ``GET /auth/oidc/callback`` finishes the authorization-code flow and
sets the same session cookie as the password sign-in. Refusals are rendered as
error pages naming the rule and the article.

API routes (``router``): the operator links an external subject to a platform
account; JupyterHub asks which platform account a subject it signed in stands
for (see ``hub_config/oidc_login.py``). The protocol itself is in
:mod:`sandbox.identity.oidc`.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from sandbox.accounts.attempts import record_attempt
from sandbox.accounts.models import Role
from sandbox.accounts.second_factor import requires_second_factor
from sandbox.accounts.service import SESSION_HOURS, open_session
from sandbox.api.deps import SESSION_COOKIE, DbDep, OperatorDep, SettingsDep
from sandbox.api.routes.hub import HubOnly
from sandbox.api.sign_in import request_time
from sandbox.audit.record import record
from sandbox.errors import SandboxError
from sandbox.identity.oidc import (
    LOGIN_MINUTES,
    OidcConfig,
    PendingLogin,
    consume_attempt,
    discover,
    link_subject,
    linked_user,
    redeem_code,
    refuse,
    start_login,
    unlink_subject,
)
from sandbox.identity.oidc_mfa import check_second_factor_claims
from sandbox.input_limits import Name
from sandbox.settings import Settings
from sandbox.web.pages.account import HOME
from sandbox.web.rendering import page_router, see_other, set_cookie
from sandbox.web.return_to import NEXT, same_site_path

STATE_COOKIE = "sandbox_oidc_state"
#: Where the sign-in returns to (``/signin?next=``), kept while the provider is visited.
NEXT_COOKIE = "sandbox_oidc_next"
HTTP_TIMEOUT = 10.0

pages = page_router()
router = APIRouter(prefix="/api", tags=["identity"])


@pages.get("/auth/oidc/login")
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


@pages.get("/auth/oidc/callback")
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


class LinkIn(BaseModel):
    username: Name
    subject: Name
    #: Defaults to the configured provider.
    issuer: Name | None = None


def _issuer(settings: Settings, issuer: str | None) -> str:
    return issuer or OidcConfig.from_settings(settings).issuer


@router.post("/oidc/links", status_code=201)
def create_link(
    body: LinkIn, db: DbDep, settings: SettingsDep, actor: OperatorDep
) -> dict[str, str]:
    issuer = _issuer(settings, body.issuer)
    with db.tx() as session:
        link_subject(
            session=session,
            actor=actor,
            username=body.username,
            issuer=issuer,
            subject=body.subject,
        )
    return {"username": body.username, "issuer": issuer, "subject": body.subject}


@router.delete("/oidc/links/{username}", status_code=204)
def delete_link(
    username: str, db: DbDep, settings: SettingsDep, actor: OperatorDep, issuer: str | None = None
) -> None:
    with db.tx() as session:
        unlink_subject(
            session=session, actor=actor, username=username, issuer=_issuer(settings, issuer)
        )


class SubjectIn(BaseModel):
    issuer: Name
    subject: Name
    #: The ID token's ``amr`` and ``acr`` as the hub received them from the provider.
    amr: Annotated[list[Name], Field(max_length=16)] = []
    acr: Name = ""


@router.post("/hub/oidc-user")
def hub_oidc_user(
    body: SubjectIn, request: Request, db: DbDep, settings: SettingsDep, _: HubOnly
) -> dict[str, str]:
    """The researcher account a subject the hub signed in stands for (only researchers
    sign in to the hub, as with passwords); a researcher with a second factor only if the
    provider reported one (``amr``/``acr``), which lets the hub ask for their workspaces."""
    problem = None
    with db.tx() as session:
        user = linked_user(session, issuer=body.issuer, subject=body.subject)
        if user.role != Role.researcher:
            problem = refuse(
                "hub-researchers-only",
                "only researchers work in the hub; operators and providers never open a workspace",
                article="Rizhao Art.31",
            )
        elif requires_second_factor(session, user, settings):
            try:
                check_second_factor_claims({"amr": body.amr, "acr": body.acr}, settings)
            except SandboxError as exc:
                problem = exc
            record_attempt(
                session,
                username=user.username,
                address="",
                channel="hub",
                succeeded=problem is None,
                at=request_time(request),
                factor="oidc",
            )
        details = {"method": "oidc", "issuer": body.issuer}
        record(
            session,
            actor=user.username,
            action="hub.sign_in" if problem is None else "hub.sign_in_refused",
            object=f"user:{user.username}",
            details={**details, "rule": problem.rule} if problem else details,
        )
    if problem is not None:  # the refusal is committed above: raise only now
        raise problem
    return {"username": user.username}
