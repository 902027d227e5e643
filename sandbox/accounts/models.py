"""Users of the platform and the tokens they authenticate with."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow
from sandbox.db.sealed import Sealed


class Role(StrEnum):
    """The people of REQUIREMENTS.md; the public needs no account."""

    researcher = "researcher"
    provider = "provider"
    operator = "operator"
    authority = "authority"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: The person's name and e-mail address are sealed (personal data, operator's guide §11).
    display_name: Mapped[str] = mapped_column(Sealed("users.display_name"))
    role: Mapped[str] = mapped_column(String(16))
    #: For providers: the provider name datasets and agreements carry.
    #: For researchers: their organisation (Wuxi Art.6 real-name identity).
    organisation: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(Sealed("users.email"), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256.

    A token may be bound to one agreement (the workspace's query-service token):
    it then works only for that agreement and dies with it.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    agreement_id: Mapped[str | None] = mapped_column(String(64), default=None)
    purpose: Mapped[str] = mapped_column(String(32), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(default=False)
