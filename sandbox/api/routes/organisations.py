"""Organisations (by unified social credit code), their members, and real-name identity.

The operator registers and links; the operator and the authority read the
register. The rules are in :mod:`sandbox.identity.organisations`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.orm import Session

from sandbox.http.deps import DbDep, OperatorDep, OversightDep, SettingsDep
from sandbox.identity.models import Organisation, OrgRole
from sandbox.identity.organisations import (
    add_member,
    add_organisation,
    find_organisation,
    list_organisations,
    members_of,
    verify_identity,
)
from sandbox.input_limits import Name

router = APIRouter(prefix="/api", tags=["identity"])


def organisation_view(session: Session, org: Organisation) -> dict[str, Any]:
    return {
        "credit_code": org.credit_code,
        "name": org.name,
        "legal_name": org.legal_name,
        "verified_how": org.verified_how,
        "verified_by": org.verified_by,
        "verified_at": org.verified_at.isoformat(),
        "members": [
            {"username": user.username, "role": m.role, "platform_role": user.role}
            for user, m in members_of(session, org)
        ],
    }


class OrganisationIn(BaseModel):
    credit_code: Name
    name: Name
    legal_name: Name
    verified_how: Name


@router.post("/organisations", status_code=201)
def create(body: OrganisationIn, db: DbDep, actor: OperatorDep) -> dict[str, Any]:
    with db.tx() as session:
        org = add_organisation(session=session, actor=actor, **body.model_dump())
        return organisation_view(session, org)


@router.get("/organisations")
def index(db: DbDep, actor: OversightDep) -> list[dict[str, Any]]:
    with db.tx() as session:
        return [organisation_view(session, o) for o in list_organisations(session, actor)]


@router.get("/organisations/{credit_code}")
def show(credit_code: str, db: DbDep, actor: OversightDep) -> dict[str, Any]:
    with db.tx() as session:
        return organisation_view(session, find_organisation(session, credit_code))


class MemberIn(BaseModel):
    username: Name
    role: OrgRole = OrgRole.member


@router.post("/organisations/{credit_code}/members", status_code=201)
def create_member(
    credit_code: str, body: MemberIn, db: DbDep, actor: OperatorDep
) -> dict[str, Any]:
    with db.tx() as session:
        add_member(
            session=session,
            actor=actor,
            credit_code=credit_code,
            username=body.username,
            role=body.role,
        )
        return organisation_view(session, find_organisation(session, credit_code))


class IdentityIn(BaseModel):
    legal_name: Name
    verified_how: Name
    #: Checked, then kept only as a keyed hash; never returned.
    resident_id: Name | None = None


@router.put("/people/{username}/identity")
def put_identity(
    username: str, body: IdentityIn, db: DbDep, settings: SettingsDep, actor: OperatorDep
) -> dict[str, Any]:
    with db.tx() as session:
        identity = verify_identity(
            session=session,
            actor=actor,
            username=username,
            secret_key=settings.secret_key,
            **body.model_dump(),
        )
        return {
            "username": username,
            "legal_name": identity.legal_name,
            "verified": identity.verified,
            "verified_how": identity.verified_how,
            "verified_at": identity.verified_at.isoformat() if identity.verified_at else None,
            "resident_id_recorded": identity.resident_id_hmac is not None,
        }
