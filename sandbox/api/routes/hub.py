"""What JupyterHub asks the platform: may this person sign in, may they spawn this workspace.

The hub never decides who works on which agreement (hub_config/control_plane.py
documents the wire format). Only researchers sign in to the hub: operators and
providers get no hub account, so no role can open a researcher's server.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, StringConstraints
from sqlalchemy import func, select

from sandbox.accounts.attempts import ADDRESS_CHARS
from sandbox.accounts.models import Role, User
from sandbox.accounts.second_factor import (
    hub_sign_in_used_second_factor,
    refusal,
    requires_second_factor,
)
from sandbox.accounts.service import issue_workspace_token
from sandbox.agreements.models import AgreementRecord
from sandbox.audit.record import record
from sandbox.errors import NotFound, PermissionDenied, SandboxError
from sandbox.http.deps import DbDep, SettingsDep, bearer_token
from sandbox.http.sign_in import second_step, sign_in
from sandbox.input_limits import Name
from sandbox.workspaces.names import network_name

router = APIRouter(prefix="/api/hub", tags=["hub"])


def hub_only(request: Request) -> None:
    expected = request.app.state.settings.hub_service_token
    presented = bearer_token(request) or ""
    if not expected or not secrets.compare_digest(presented, expected):
        raise PermissionDenied("only the platform's JupyterHub may call this", rule="hub-token")


HubOnly = Annotated[None, Depends(hub_only)]


class Credentials(BaseModel):
    username: Name
    password: Name
    #: The researcher's address as the hub saw it (the hub is trusted through its token);
    #: without it the per-address backoff cannot tell researchers apart and is skipped.
    address: Annotated[str, StringConstraints(max_length=ADDRESS_CHARS)] = ""
    #: The authenticator's code or a recovery code, for a researcher with a second factor.
    otp: Annotated[str, StringConstraints(max_length=64)] = ""


@router.post("/authenticate")
def hub_authenticate(body: Credentials, request: Request, db: DbDep, _: HubOnly) -> dict[str, bool]:
    """Whether a researcher's password (and second factor, if they have one) is right;
    failures count towards the same backoff as the platform's own sign-in (429 with
    Retry-After while it holds). A wrong or missing code is refused with its rule (403)."""
    problem = None
    with db.tx() as session:
        user = sign_in(
            session, request, body.username, body.password, channel="hub", address=body.address
        )
        ok = user is not None and user.role == Role.researcher
        if ok:
            problem = second_step(
                session, request, user, body.otp, channel="hub", address=body.address
            )
            ok = problem is None
        record(
            session,
            actor=body.username,
            action="hub.sign_in" if ok else "hub.sign_in_refused",
            object=f"user:{body.username}",
            details={"rule": problem.rule} if problem else None,
        )
    if problem is not None:  # the failure is committed above: refuse only now
        raise problem
    return {"authenticated": ok}


class SpawnRequest(BaseModel):
    username: Name
    server_name: Name


@router.post("/spawn-authorization")
def spawn_authorization(
    body: SpawnRequest, db: DbDep, settings: SettingsDep, _: HubOnly
) -> dict[str, Any]:
    """A workspace token bound to (researcher, agreement), refused unless the agreement
    is active and names the researcher, and, for a researcher with a second factor,
    unless their hub sign-in passed it. A refusal is recorded too (R12: repeated
    attempts are what an early warning looks for)."""
    try:
        with db.tx() as session:
            user = session.scalar(select(User).where(User.username == body.username))
            rec = session.scalar(
                select(AgreementRecord).where(func.lower(AgreementRecord.id) == body.server_name)
            )
            if user is None or rec is None:
                raise NotFound(
                    f"no agreement {body.server_name!r} for you", rule="agreement-unknown"
                )
            if requires_second_factor(
                session, user, settings
            ) and not hub_sign_in_used_second_factor(session, user):
                raise refusal("mfa-hub-session")
            token, expires = issue_workspace_token(session, user, rec)
            return {
                "agreement_id": rec.id,
                "token": token,
                "expires_at": expires.isoformat(),
                "network_name": network_name(rec.id),
            }
    except SandboxError as exc:
        with db.tx() as session:
            record(
                session,
                actor=body.username,
                action="hub.spawn_refused",
                object=f"server:{body.server_name}",
                details={"rule": exc.rule, "article": exc.article},
            )
        raise
