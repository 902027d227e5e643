"""Who must sign in with a second factor, and the second step of a sign-in (Rizhao Art.29, R13).

Providers review applications and exports, operators run the platform and the authority
reads the whole record: a stolen password must not be enough for any of them, so they
always need one. Researchers need one when ``SANDBOX_MFA_RESEARCHERS=required``, or once
they have set one up themselves. The second step goes through the password's backoff and
record (:mod:`sandbox.accounts.backoff`): a wrong code is a failed sign-in like a wrong
password, and only a sign-in that passed both steps counts as a success.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.attempts import SignInAttempt, as_utc, record_attempt
from sandbox.accounts.backoff import check_backoff
from sandbox.accounts.models import Role, User
from sandbox.accounts.totp import factor_of, verify_second_factor
from sandbox.errors import PolicyViolation
from sandbox.settings import Settings

ARTICLE = "Rizhao Art.29 (R13)"
#: Roles that always sign in with a second factor.
STAFF = frozenset({Role.provider, Role.operator, Role.authority})


def requires_second_factor(session: Session, user: User, settings: Settings) -> bool:
    """Whether ``user`` signs in with a second factor, on every channel."""
    return (
        Role(user.role) in STAFF
        or settings.mfa_researchers == "required"
        or factor_of(session, user) is not None
    )


def refusal(rule: str) -> PolicyViolation:
    """Why a second step failed, and what to do."""
    messages = {
        "mfa-enrol": "this account signs in with a second factor and has no authenticator "
        "yet: set one up by signing in on the platform's sign-in page (/signin) first",
        "mfa-required": "this account signs in with a second factor: give the 6-digit code "
        "of your authenticator app (otp), or one of your recovery codes",
        "mfa-code": "the code is wrong, expired or already used (each code is accepted once): "
        "wait for the next code of your authenticator app, or use a recovery code",
        "mfa-hub-session": "your last sign-in to the hub did not use your second factor: "
        "sign out of the hub and sign in again with your authenticator's code",
    }
    return PolicyViolation(rule, ARTICLE, messages[rule])


def present_second_factor(
    session: Session,
    user: User,
    code: str,
    *,
    keys_dir: Path,
    address: str,
    channel: str,
    now: datetime,
) -> PolicyViolation | None:
    """Check ``code`` after ``user``'s password was right: ``None`` when it passes, else the
    refusal to raise once the caller has committed the failed attempt it records. Raises
    :class:`~sandbox.errors.TooManyAttempts` first while failed sign-ins must wait."""
    check_backoff(session, username=user.username, address=address, now=now)
    if factor_of(session, user) is None:
        problem, factor = "mfa-enrol", "none"
    elif not code.strip():
        problem, factor = "mfa-required", "missing"
    else:
        used = verify_second_factor(session, user, keys_dir, code, now=now)
        problem, factor = ("", used) if used else ("mfa-code", "totp")
    record_attempt(
        session,
        username=user.username,
        address=address,
        channel=channel,
        succeeded=not problem,
        at=now,
        factor=factor,
    )
    return refusal(problem) if problem else None


def hub_sign_in_used_second_factor(session: Session, user: User) -> bool:
    """Whether ``user``'s latest sign-in to the hub passed a second factor, after the
    authenticator they have now was set up (a session older than a reset does not count)."""
    last = session.scalars(
        select(SignInAttempt)
        .where(
            SignInAttempt.username == user.username,
            SignInAttempt.channel == "hub",
            SignInAttempt.succeeded.is_(True),
        )
        .order_by(SignInAttempt.at.desc(), SignInAttempt.id.desc())
        .limit(1)
    ).first()
    if last is None or not last.factor:
        return False
    factor = factor_of(session, user)
    return (
        factor is None
        or factor.confirmed_at is None
        or as_utc(last.at) >= as_utc(factor.confirmed_at)
    )
