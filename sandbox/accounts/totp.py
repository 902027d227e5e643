"""The second factor: a TOTP authenticator (RFC 6238, pyotp) with single-use recovery codes.

Identity authentication is a required safeguard (Rizhao Art.29, R13); a password alone
is one guess away. The TOTP secret is kept sealed with the key store's key
(:mod:`sandbox.accounts.secret_box`), recovery codes as SHA-256 only (they are random
80-bit values, like API tokens, so a fast hash is enough). A code is accepted once: the
last accepted time step is kept per account, and a code of that step or an earlier one is
refused, whichever channel presented it first.

Functions return whether a code was right and leave refusing to the caller, which records
the failure (:func:`sandbox.accounts.attempts.record_attempt`) and commits before it
refuses, as the password sign-in does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyotp
from sqlalchemy import ForeignKey, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from sandbox.accounts.models import ApiToken, Role, User
from sandbox.accounts.permissions import require_role
from sandbox.accounts.secret_box import account_key, seal, unseal
from sandbox.audit.record import record
from sandbox.db.base import Base, utcnow
from sandbox.db.sealed import session_key_store
from sandbox.errors import Conflict, NotFound

ISSUER = "Data sandbox"
RECOVERY_CODES = 10
#: Codes of one step before or after now are accepted: clocks drift, people type slowly.
DRIFT_STEPS = 1
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class TotpFactor(Base):
    """One account's authenticator; ``confirmed_at`` is empty until a first code proved
    the person holds it (an unconfirmed factor is an enrolment under way)."""

    __tablename__ = "totp_factors"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The last time step whose code was accepted; codes of this step or earlier are refused.
    last_step: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True)
class Enrolment:
    """What the person copies into their authenticator app."""

    secret: str
    uri: str


def _context(user: User) -> str:
    return f"totp:{user.id}"


def _digest(code: str) -> str:
    return hashlib.sha256(_normalised(code).encode()).hexdigest()


def _normalised(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def factor_of(session: Session, user: User, *, lock: bool = False) -> TotpFactor | None:
    """The account's confirmed authenticator, if it has one."""
    # Locked, the row is read again: a code another transaction just accepted must count.
    factor = session.get(TotpFactor, user.id, with_for_update=lock, populate_existing=lock)
    return factor if factor is not None and factor.confirmed_at is not None else None


def start_enrolment(session: Session, user: User, keys_dir: Path) -> Enrolment:
    """A new secret for ``user`` (replacing an enrolment under way); an account that
    already has an authenticator keeps it until an operator resets it."""
    if factor_of(session, user) is not None:
        raise Conflict(
            "this account already has an authenticator; if it is lost, ask an operator to reset it",
            rule="mfa-enrolled",
        )
    secret = pyotp.random_base32()
    session.merge(
        TotpFactor(
            user_id=user.id,
            secret_sealed=seal(_key(session, keys_dir), secret.encode(), context=_context(user)),
            confirmed_at=None,
            last_step=0,
        )
    )
    record(session, actor=user.username, action="user.mfa_enrol_start", object=_object(user))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def pending_enrolment(session: Session, user: User, keys_dir: Path) -> Enrolment | None:
    """The enrolment under way, to show again after a wrong first code."""
    factor = session.get(TotpFactor, user.id)
    if factor is None or factor.confirmed_at is not None:
        return None
    secret = _secret(factor, user, _key(session, keys_dir))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return Enrolment(secret, uri)


def confirm_enrolment(
    session: Session, user: User, keys_dir: Path, code: str, *, now: datetime
) -> list[str] | None:
    """The recovery codes (shown once) if ``code`` is the pending secret's, else ``None``."""
    factor = session.get(TotpFactor, user.id, with_for_update=True, populate_existing=True)
    if factor is None or factor.confirmed_at is not None:
        return None
    step = _accepted_step(factor, user, _key(session, keys_dir), code, now)
    if step is None:
        return None
    factor.confirmed_at, factor.last_step = now, step
    codes = _new_recovery_codes(session, user)
    record(
        session,
        actor=user.username,
        action="user.mfa_enrol",
        object=_object(user),
        details={"recovery_codes": len(codes)},
    )
    return codes


def enrol_known_secret(session: Session, user: User, keys_dir: Path, secret: str) -> None:
    """Give ``user`` an authenticator whose secret is already known: the demo's, printed
    for anyone to use (sandbox/demo/seed.py). A known secret is no second factor, so this
    is for demo accounts only; they get no recovery codes."""
    session.merge(
        TotpFactor(
            user_id=user.id,
            secret_sealed=seal(_key(session, keys_dir), secret.encode(), context=_context(user)),
            confirmed_at=utcnow(),
            last_step=0,
        )
    )
    record(
        session,
        actor=user.username,
        action="user.mfa_enrol",
        object=_object(user),
        details={"recovery_codes": 0, "secret": "demo"},
    )


def verify_second_factor(
    session: Session, user: User, keys_dir: Path, code: str, *, now: datetime
) -> str | None:
    """``"totp"`` or ``"recovery"`` for the factor ``code`` proved (and used up), or ``None``."""
    factor = factor_of(session, user, lock=True)
    if factor is None or not code.strip():
        return None
    step = _accepted_step(factor, user, _key(session, keys_dir), code, now)
    if step is not None:
        factor.last_step = step
        return "totp"
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _digest(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:
        return None
    left = len(unused_recovery_codes(session, user))
    record(
        session,
        actor=user.username,
        action="user.mfa_recovery_code_used",
        object=_object(user),
        details={"left": left},
    )
    return "recovery"


def unused_recovery_codes(session: Session, user: User) -> list[RecoveryCode]:
    return list(
        session.scalars(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        )
    )


def reset_factor(session: Session, actor: User, user: User) -> None:
    """An operator removes a lost authenticator: its secret and recovery codes go, the
    account's sessions end, and it enrols anew at its next sign-in (recorded)."""
    require_role(actor, Role.operator)
    factor = session.get(TotpFactor, user.id, with_for_update=True)
    if factor is None:
        raise NotFound(f"{user.username} has no authenticator to reset", rule="mfa-none")
    session.delete(factor)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.agreement_id.is_(None),
            ApiToken.revoked.is_(False),
        )
        .values(revoked=True)
    )
    record(
        session,
        actor=actor.username,
        action="user.mfa_reset",
        object=_object(user),
        details={"sessions_ended": ended.rowcount},
    )


def _object(user: User) -> str:
    return f"user:{user.username}"


def _key(session: Session, keys_dir: Path) -> bytes:
    """The key secrets are sealed with: the key store's that ``session`` works with (an
    earlier version's file in ``keys_dir`` is moved in at the first use)."""
    return account_key(session_key_store(session), keys_dir)


def _secret(factor: TotpFactor, user: User, key: bytes) -> str:
    return unseal(key, factor.secret_sealed, context=_context(user)).decode()


def _accepted_step(
    factor: TotpFactor, user: User, key: bytes, code: str, now: datetime
) -> int | None:
    """The time step whose code ``code`` is, within the drift and after the last one used."""
    code = _normalised(code)
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(_secret(factor, user, key))
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > factor.last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))  # 80 bits
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        session.add(RecoveryCode(user_id=user.id, code_hash=_digest(raw)))
    session.flush()
    return codes
