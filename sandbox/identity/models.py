"""Organisations, their members, natural persons' real-name identity, and OIDC links.

An organisation is keyed by its unified social credit code and natural persons
by their resident ID number (Rizhao Art.10). The platform never stores a
resident ID number: only a keyed hash, enough to refuse a second account for
the same person and nothing more.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow
from sandbox.db.sealed import BlindIndex, Sealed


class Organisation(Base):
    """A legal person or unincorporated organisation, verified by the operator at creation.

    ``name`` is the short name the rest of the platform already uses: it is what
    ``User.organisation`` holds for every member and, for a provider, what its
    datasets and agreements carry as ``provider``.
    """

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    #: How the operator checked the code and the name (e.g. a registry lookup).
    verified_how: Mapped[str] = mapped_column(String(200))
    verified_by: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrgRole(StrEnum):
    """A member's standing in the organisation (not a platform role)."""

    #: Acts for the organisation: submits applications and signs commitments for it.
    representative = "representative"
    member = "member"


class Membership(Base):
    """A user belongs to at most one organisation, as ``User.organisation`` is one name."""

    __tablename__ = "organisation_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonIdentity(Base):
    """A natural person's real name (sealed) and how it was verified (Wuxi Art.6 实名注册)."""

    __tablename__ = "person_identities"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(Sealed("person_identities.legal_name"))
    #: HMAC-SHA256 of the resident ID number under the platform's secret key.
    resident_id_hmac: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    verified: Mapped[bool] = mapped_column(default=False)
    verified_how: Mapped[str] = mapped_column(String(200), default="")
    verified_by: Mapped[str] = mapped_column(String(64), default="")
    verified_at: Mapped[datetime | None] = mapped_column(default=None)


class OidcLink(Base):
    """An external identity (issuer, subject) that may sign in as one platform user.

    The subject is sealed: an identity provider may know a person by their resident ID
    number. It is found by its blind index, which is set to the subject itself (the column's
    type stores the keyed hash) and compared with a subject the same way.
    """

    __tablename__ = "oidc_links"
    __table_args__ = (
        UniqueConstraint("issuer", "subject_index", name="uq_oidc_links_issuer_subject_index"),
        UniqueConstraint("issuer", "user_id", name="uq_oidc_links_issuer_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(Sealed("oidc_links.subject"))
    subject_index: Mapped[str] = mapped_column(BlindIndex("oidc_links.subject"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OidcLoginAttempt(Base):
    """One authorization request in flight: its state (hashed), nonce and PKCE verifier.

    Kept in the database, not in process memory, so any platform instance can
    finish a sign-in another started; used once, then never again.
    """

    __tablename__ = "oidc_login_attempts"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
