"""Who may sign in through an external OpenID Connect provider: the operator links an
external subject to a platform account; JupyterHub asks which platform account a subject
it signed in stands for (see ``hub_config/oidc_login.py``). The browser's sign-in itself is
:mod:`sandbox.web.oidc`, the protocol :mod:`sandbox.identity.oidc`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sandbox.accounts.attempts import record_attempt
from sandbox.accounts.models import Role
from sandbox.accounts.second_factor import requires_second_factor
from sandbox.api.routes.hub import HubOnly
from sandbox.audit.record import record
from sandbox.errors import SandboxError
from sandbox.http.deps import DbDep, OperatorDep, SettingsDep
from sandbox.http.sign_in import request_time
from sandbox.identity.oidc import (
    OidcConfig,
    link_subject,
    linked_user,
    refuse,
    unlink_subject,
)
from sandbox.identity.oidc_mfa import check_second_factor_claims
from sandbox.input_limits import Name
from sandbox.settings import Settings

router = APIRouter(prefix="/api", tags=["identity"])


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
