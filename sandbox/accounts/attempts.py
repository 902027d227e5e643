"""Sign-in attempts: who tried which account, from where and when, and whether it worked.

Failures are what the backoff counts (:mod:`sandbox.accounts.backoff`) and what the
operator's sign-in page lists; successes tell the backoff which addresses an account
already signs in from. Passwords are never kept. Each failure is also an audit event
(``user.sign_in_failed``; Shanghai Art.44, Rizhao Art.29). Attempts refused by the
backoff itself are not written: a client hammering a throttled account must not be able
to fill the database; they are counted in ``/metrics`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Boolean, Index, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from sandbox.audit.record import record
from sandbox.db.base import Base
from sandbox.input_limits import NAME_CHARS

#: The column width kept for an address (an IPv6 address is at most 45 characters).
ADDRESS_CHARS = 64
#: Where a password was presented: the sign-in page, the API token endpoint, the hub.
CHANNELS = ("web", "api", "hub")


class SignInAttempt(Base):
    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_username_at", "username", "at"),
        Index("ix_sign_in_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    #: The account name as typed (it need not exist), cut to the longest a name may be.
    username: Mapped[str] = mapped_column(String(NAME_CHARS))
    #: The client address (sandbox/http/client_address.py); empty when the channel does not
    #: know it (the hub did not say).
    address: Mapped[str] = mapped_column(String(ADDRESS_CHARS))
    channel: Mapped[str] = mapped_column(String(8))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    #: The second factor presented: ``totp``, ``recovery``, ``oidc`` (the identity provider's
    #: ``amr``), or why none was (``missing``, ``none``: no authenticator set up); empty for
    #: a password alone (sandbox/accounts/second_factor.py).
    factor: Mapped[str] = mapped_column(String(16), default="", server_default="")


def as_utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored instant is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_attempt(
    session: Session,
    *,
    username: str,
    address: str,
    channel: str,
    succeeded: bool,
    at: datetime,
    factor: str = "",
) -> SignInAttempt:
    """Keep one attempt; a failure is also appended to the audit record (the caller commits)."""
    attempt = SignInAttempt(
        at=at,
        username=username[:NAME_CHARS],
        address=address[:ADDRESS_CHARS],
        channel=channel,
        succeeded=succeeded,
        factor=factor,
    )
    session.add(attempt)
    if not succeeded:
        details = {"address": attempt.address, "channel": channel}
        record(
            session,
            actor=attempt.username.strip() or "anonymous",
            action="user.sign_in_failed",
            object=f"user:{attempt.username}",
            details={**details, "factor": factor} if factor else details,
        )
    session.flush()
    return attempt


@dataclass(frozen=True)
class FailureGroup:
    """Recent failures of one account, or from one address, for the operator."""

    key: str
    failures: int
    first: datetime
    last: datetime
    #: Distinct addresses (for an account) or accounts (for an address) involved.
    spread: int


def _grouped(session: Session, column, other, since: datetime) -> list[FailureGroup]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(
            column,
            func.count(),
            func.min(SignInAttempt.at),
            func.max(SignInAttempt.at),
            func.count(other.distinct()),
        )
        .where(SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since)
        .group_by(column)
        .order_by(func.count().desc(), func.max(SignInAttempt.at).desc())
        .limit(100)
    )
    return [
        FailureGroup(key, n, as_utc(first), as_utc(last), spread)
        for key, n, first, last, spread in rows
    ]


def failures_by_account(session: Session, *, since: datetime) -> list[FailureGroup]:
    """The 100 accounts with the most failed sign-ins since ``since``."""
    return _grouped(session, SignInAttempt.username, SignInAttempt.address, since)


def failures_by_address(session: Session, *, since: datetime) -> list[FailureGroup]:
    """The 100 addresses with the most failed sign-ins since ``since``."""
    return _grouped(session, SignInAttempt.address, SignInAttempt.username, since)


def recent_failures(session: Session, *, since: datetime, limit: int = 100) -> list[SignInAttempt]:
    """The latest failed attempts since ``since``, newest first."""
    return list(
        session.scalars(
            select(SignInAttempt)
            .where(SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since)
            .order_by(SignInAttempt.at.desc(), SignInAttempt.id.desc())
            .limit(limit)
        )
    )
