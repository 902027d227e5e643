"""Create accounts, sign in, and issue and check bearer tokens.

Tokens are random, shown once, and stored as SHA-256 only. A workspace token is
bound to one (researcher, agreement) pair and expires with the agreement; it is
revoked the moment the agreement stops being active.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import ApiToken, Role, User
from sandbox.accounts.passwords import hash_password, verify_password
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.audit.record import record
from sandbox.errors import Conflict, PermissionDenied, PolicyViolation, ValidationFailed
from sandbox.settings import get_settings

SESSION_HOURS = 12
MIN_PASSWORD = 10


def token_digest(token: str) -> str:
    """What the database keeps of a token (``api_tokens.token_hash``)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    display_name: str,
    organisation: str = "",
    email: str = "",
    actor: str = "platform",
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", rule="user-duplicate")
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            f"a password has at least {MIN_PASSWORD} characters", rule="password-length"
        )
    if role == Role.provider and not organisation:
        raise ValidationFailed("a provider account names its organisation", rule="user-fields")
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        organisation=organisation,
        email=email,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.create",
        object=f"user:{username}",
        details={"role": role.value, "organisation": organisation},
    )
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    return user


def issue_token(session: Session, user: User, *, hours: int = SESSION_HOURS) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=token_digest(token),
            user_id=user.id,
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )
    )
    return token


def open_session(session: Session, user: User, details: dict[str, str]) -> str:
    """A signed-in user's token, and the sign-in in the record (how: ``details``)."""
    token = issue_token(session, user)
    record(
        session,
        actor=user.username,
        action="user.sign_in",
        object=f"user:{user.username}",
        details=details,
    )
    return token


def agreement_end(rec: AgreementRecord) -> datetime:
    """The first instant after the agreement's last day (inclusive, Asia/Shanghai)."""
    tz = ZoneInfo(get_settings().timezone)
    return datetime.combine(rec.valid_until + timedelta(days=1), time(0), tz).astimezone(UTC)


def issue_workspace_token(
    session: Session, user: User, rec: AgreementRecord
) -> tuple[str, datetime]:
    """The query-service token a workspace gets at spawn (issue 5, pre_spawn_hook)."""
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            "Shanghai Art.26, 36",
            f"agreement {rec.id} is {rec.status}; workspaces run only under an active agreement",
        )
    if user.username not in rec.spec["researchers"]:
        raise PermissionDenied(
            f"agreement {rec.id} does not name {user.username} as a researcher",
            rule="agreement-researcher",
        )
    token = secrets.token_urlsafe(32)
    expires = agreement_end(rec)
    session.add(
        ApiToken(
            token_hash=token_digest(token),
            user_id=user.id,
            agreement_id=rec.id,
            purpose="workspace",
            expires_at=expires,
        )
    )
    record(
        session,
        actor=user.username,
        action="token.issue",
        object=f"agreement:{rec.id}",
        details={"purpose": "workspace", "expires_at": expires.isoformat()},
    )
    return token, expires


def resolve_token(session: Session, token: str) -> tuple[User, ApiToken] | None:
    """The user and token row for a live token; ``None`` for unknown, expired or revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None or row.revoked:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= datetime.now(UTC):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is not None:
        row.revoked = True
