"""Sign in with a password (and a second factor, for accounts that need one) and get a
bearer token; an operator resets a lost authenticator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from sandbox.accounts.service import open_session
from sandbox.accounts.totp import reset_factor
from sandbox.errors import PermissionDenied
from sandbox.http.deps import DbDep, OperatorDep, UserDep
from sandbox.http.sign_in import second_step, sign_in
from sandbox.identity.organisations import find_user, has_real_name

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token")
def token(
    request: Request,
    db: DbDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    otp: Annotated[str, Form(max_length=64)] = "",
) -> dict[str, str]:
    """A bearer token for a name and password, and for accounts with a second factor the
    current code of their authenticator or a recovery code (``otp``); failures are recorded
    and slow the next attempt down (429 with Retry-After, sandbox/accounts/backoff.py)."""
    refusal = None
    with db.tx() as session:
        user = sign_in(session, request, username, password, channel="api")
        if user is not None:
            refusal = second_step(session, request, user, otp, channel="api")
        if user is not None and refusal is None:
            value = open_session(session, user, {"channel": "api"})
    if user is None:  # the failure is committed above: refuse only now
        raise PermissionDenied("unknown user or wrong password", rule="auth")
    if refusal is not None:
        raise refusal
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


@router.delete("/users/{username}/second-factor", status_code=204)
def reset_second_factor(username: str, db: DbDep, actor: OperatorDep) -> None:
    """Remove a user's lost authenticator and recovery codes and end their sessions; they
    set up a new one at their next sign-in (recorded as ``user.mfa_reset``)."""
    with db.tx() as session:
        reset_factor(session, actor, find_user(session, username))
