"""A web sign-in between its two steps: the password was right, the second factor is due.

The browser holds a random token (an httponly cookie) that opens nothing but the second
step's pages, for :data:`PENDING_MINUTES`; the database keeps its SHA-256. It is sign-in
bookkeeping, not a record of anything opened or used, so, like a pending OpenID Connect
sign-in, it leaves no audit event: the second step's success or failure does.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from sandbox.accounts.models import User
from sandbox.db.base import Base

PENDING_MINUTES = 10


class PendingSignIn(Base):
    __tablename__ = "pending_sign_ins"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_pending(session: Session, user: User, *, now: datetime) -> str:
    """A new token for ``user``'s second step (expired ones of anyone are cleared)."""
    session.execute(delete(PendingSignIn).where(PendingSignIn.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        PendingSignIn(
            token_hash=_digest(token),
            user_id=user.id,
            expires_at=now + timedelta(minutes=PENDING_MINUTES),
        )
    )
    return token


def pending_user(session: Session, token: str, *, now: datetime) -> User | None:
    """The active account whose password step ``token`` stands for, while it is fresh."""
    row = session.get(PendingSignIn, _digest(token)) if token else None
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    user = session.get(User, row.user_id)
    return user if expires > now and user is not None and user.active else None


def finish_pending(session: Session, token: str) -> None:
    """The second step passed: the token opens nothing any more."""
    session.execute(delete(PendingSignIn).where(PendingSignIn.token_hash == _digest(token)))
