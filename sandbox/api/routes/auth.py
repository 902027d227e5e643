"""Sign in with a password and get a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from sandbox.accounts.service import open_session
from sandbox.api.deps import DbDep, UserDep
from sandbox.api.sign_in import sign_in
from sandbox.errors import PermissionDenied
from sandbox.identity.organisations import has_real_name

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token")
def token(
    request: Request,
    db: DbDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> dict[str, str]:
    """A bearer token for a name and password; failures are recorded and slow the next
    attempt down (429 with Retry-After, sandbox/accounts/backoff.py)."""
    with db.tx() as session:
        user = sign_in(session, request, username, password, channel="api")
        if user is not None:
            value = open_session(session, user, {"channel": "api"})
    if user is None:  # the failure is committed above: refuse only now
        raise PermissionDenied("unknown user or wrong password", rule="auth")
    return {"access_token": value, "token_type": "bearer"}


@router.get("/me")
def me(db: DbDep, user: UserDep) -> dict[str, str | bool]:
    """Who the token belongs to, and whether the operator verified their real name (an
    applicant must be before submitting, Wuxi Art.6)."""
    with db.tx() as session:
        verified = has_real_name(session, user)
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "organisation": user.organisation,
        "real_name_verified": verified,
    }
