"""Organisations, their members and natural persons' real-name identity (Wuxi Art.6; Rizhao Art.10).

Who creates what, and why:

* Only the operator (the platform, 市大数据中心) registers an organisation, after
  checking its unified social credit code and name against the national
  register; the record says how (``verified_how``). There is no
  self-registration: Wuxi Art.6 puts real-name registration on the province's
  government service network, so a registration here is the operator copying a
  verified fact, never an applicant's claim waiting for review.
* A user joins at most one organisation. Joining sets ``User.organisation`` to
  the organisation's ``name``, which is the name every permission check already
  compares (a provider's datasets carry it as ``provider``). A provider whose
  account already acts for another name is refused: moving it would hand that
  provider's datasets to someone else.
* A natural person's identity is their real name and, optionally, their
  resident ID number, kept only as an HMAC under the platform's secret key: the
  platform can refuse a second account for the same person but cannot recover,
  list or brute-force the numbers (18-digit numbers with a birth date have too
  little entropy for a plain hash).

Every change appends an audit event in the same transaction; refusals change
nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.audit.record import record
from sandbox.catalog.identifiers import is_credit_code, is_resident_id
from sandbox.db.base import utcnow
from sandbox.errors import Conflict, NotFound, PolicyViolation, ValidationFailed
from sandbox.identity.models import Membership, Organisation, OrgRole, PersonIdentity

IDENTIFIER_ARTICLE = "Rizhao Art.10"
REAL_NAME_ARTICLE = "Wuxi Art.6"


def _required(**fields: str) -> None:
    missing = [name for name, value in fields.items() if not value.strip()]
    if missing:
        raise ValidationFailed(f"these fields are required: {', '.join(missing)}", rule="fields")


def find_organisation(session: Session, credit_code: str) -> Organisation:
    org = session.scalar(
        select(Organisation).where(Organisation.credit_code == credit_code.strip().upper())
    )
    if org is None:
        raise NotFound("no organisation with this credit code", rule="organisation-unknown")
    return org


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no platform user {username!r}", rule="user-unknown")
    return user


def add_organisation(
    *,
    session: Session,
    actor: User,
    credit_code: str,
    name: str,
    legal_name: str,
    verified_how: str,
) -> Organisation:
    """Register an organisation the operator has verified; the code must pass GB 32100."""
    require_role(actor, Role.operator)
    _required(name=name, legal_name=legal_name, verified_how=verified_how)
    code = credit_code.strip().upper()
    if not is_credit_code(code):
        raise ValidationFailed(
            "an organisation is identified by its 18-character unified social credit code "
            "(GB 32100-2015) and this one fails the check",
            rule="credit-code",
            article=IDENTIFIER_ARTICLE,
        )
    clash = session.scalar(
        select(Organisation).where(
            (Organisation.credit_code == code) | (Organisation.name == name.strip())
        )
    )
    if clash is not None:
        raise Conflict(
            f"an organisation with this credit code or the name {clash.name!r} already exists",
            rule="organisation-duplicate",
        )
    org = Organisation(
        credit_code=code,
        name=name.strip(),
        legal_name=legal_name.strip(),
        verified_how=verified_how.strip(),
        verified_by=actor.username,
    )
    session.add(org)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="organisation.create",
        object=f"organisation:{code}",
        details={"name": org.name, "legal_name": org.legal_name, "verified_how": org.verified_how},
    )
    return org


def members_of(session: Session, org: Organisation) -> list[tuple[User, Membership]]:
    rows = session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == org.id)
        .order_by(User.username)
    )
    return [(user, membership) for user, membership in rows]


def list_organisations(session: Session, actor: User) -> list[Organisation]:
    """The register is the oversight roles' to read (it names people and their employers)."""
    require_role(actor, Role.operator, Role.authority)
    return list(session.scalars(select(Organisation).order_by(Organisation.name)))


def add_member(
    *, session: Session, actor: User, credit_code: str, username: str, role: OrgRole
) -> Membership:
    """Link a user to an organisation and make ``User.organisation`` say so."""
    require_role(actor, Role.operator)
    org = find_organisation(session, credit_code)
    user = find_user(session, username)
    current = session.scalar(select(Membership).where(Membership.user_id == user.id))
    if current is not None:
        raise Conflict(
            f"{username} already belongs to an organisation; an account acts for one only",
            rule="member-duplicate",
        )
    if user.role == Role.provider and user.organisation not in ("", org.name):
        raise Conflict(
            f"{username} is a provider acting for {user.organisation!r}, whose datasets carry "
            f"that name; joining {org.name!r} would hand them to another provider",
            rule="provider-organisation",
        )
    previous = user.organisation
    user.organisation = org.name
    membership = Membership(
        organisation_id=org.id, user_id=user.id, role=role.value, added_by=actor.username
    )
    session.add(membership)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="organisation.add_member",
        object=f"organisation:{org.credit_code}",
        details={"username": username, "role": role.value, "previous_organisation": previous},
    )
    return membership


def resident_id_hmac(secret_key: str, resident_id: str) -> str:
    """The keyed hash stored instead of a resident ID number (domain-separated key)."""
    key = hmac.new(secret_key.encode(), b"sandbox/resident-id/v1", hashlib.sha256).digest()
    return hmac.new(key, resident_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(
    *,
    session: Session,
    actor: User,
    username: str,
    legal_name: str,
    verified_how: str,
    resident_id: str | None,
    secret_key: str,
) -> PersonIdentity:
    """Record that the operator verified a person's real name (and, optionally, ID number)."""
    require_role(actor, Role.operator)
    _required(legal_name=legal_name, verified_how=verified_how)
    user = find_user(session, username)
    digest = None
    if resident_id:
        number = resident_id.strip().upper()
        if not is_resident_id(number):
            raise ValidationFailed(
                "a natural person is identified by the 18-digit resident ID number "
                "(GB 11643-1999) and this one fails the check",
                rule="resident-id",
                article=IDENTIFIER_ARTICLE,
            )
        digest = resident_id_hmac(secret_key, number)
        owner = session.scalar(
            select(PersonIdentity.user_id).where(PersonIdentity.resident_id_hmac == digest)
        )
        if owner is not None and owner != user.id:
            raise Conflict(
                "this resident ID number is already verified for another account; "
                "a person has one account",
                rule="resident-id-duplicate",
            )
    identity = session.get(PersonIdentity, user.id) or PersonIdentity(user_id=user.id)
    identity.legal_name = legal_name.strip()
    identity.resident_id_hmac = digest or identity.resident_id_hmac
    identity.verified = True
    identity.verified_how = verified_how.strip()
    identity.verified_by = actor.username
    identity.verified_at = utcnow()
    session.add(identity)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="person.verify_identity",
        object=f"user:{username}",
        # Neither the name nor the number goes into the record: only that they were checked.
        details={"verified_how": identity.verified_how, "resident_id": digest is not None},
    )
    return identity


def identity_of(session: Session, user: User) -> PersonIdentity | None:
    """The account's verified identity, or None while the operator has not verified it."""
    identity = session.get(PersonIdentity, user.id)
    return identity if identity is not None and identity.verified else None


def has_real_name(session: Session, user: User) -> bool:
    """For pages: whether :func:`require_real_name` would let ``user`` through."""
    return identity_of(session, user) is not None


def require_real_name(session: Session, user: User) -> None:
    """For callers that need a real-name identified person (e.g. an applicant, Wuxi Art.6)."""
    if not has_real_name(session, user):
        raise PolicyViolation(
            "real-name",
            REAL_NAME_ARTICLE,
            f"account {user.username!r} is not real-name verified, and this needs a real-name "
            "verified person; ask the platform operator to verify your identity",
        )


def list_identities(session: Session, actor: User) -> list[tuple[User, PersonIdentity | None]]:
    """Every account with its verified identity (None when unverified), for oversight.

    Like the organisation register this names people, so only the oversight roles read it;
    it carries whether a resident ID number was recorded, never the number (only its HMAC
    is kept).
    """
    require_role(actor, Role.operator, Role.authority)
    rows = session.execute(
        select(User, PersonIdentity)
        .outerjoin(PersonIdentity, PersonIdentity.user_id == User.id)
        .order_by(User.username)
    )
    return [
        (user, identity if identity is not None and identity.verified else None)
        for user, identity in rows
    ]
