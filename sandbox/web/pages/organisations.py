"""The register of organisations and of natural persons' real names (Wuxi Art.6;
Rizhao Art.10): the operator adds organisations it has verified, links members and
records the real names it has verified; the authority reads both.

The rules (credit code and resident ID checks, one organisation per account, a
provider's name, one account per person) are in :mod:`sandbox.identity.organisations`;
these routes only call them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.api.routes.organisations import organisation_view
from sandbox.http.deps import DbDep, OperatorDep, OversightDep, SettingsDep
from sandbox.identity.models import OrgRole
from sandbox.identity.organisations import (
    add_member,
    add_organisation,
    list_identities,
    list_organisations,
    verify_identity,
)
from sandbox.input_limits import Name
from sandbox.web.form_refusal import required, shows_again
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/operator")


@router.get("/organisations")
def index(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    with db.tx() as session:
        organisations = [organisation_view(session, o) for o in list_organisations(session, user)]
    return render(
        request,
        "operator/organisations.html",
        {"organisations": organisations, "org_roles": [r.value for r in OrgRole]},
    )


@router.post("/organisations")
@shows_again(
    "/operator/organisations", form="organisation-form",
    rules={"fields": required("name", "legal_name", "verified_how"),
           "credit-code": "credit_code", "organisation-duplicate": None},
    labels={"name": "org_name"},
)  # fmt: skip
def create(
    db: DbDep,
    user: OperatorDep,
    credit_code: Annotated[Name, Form()] = "",
    name: Annotated[Name, Form()] = "",
    legal_name: Annotated[Name, Form()] = "",
    verified_how: Annotated[Name, Form()] = "",
) -> RedirectResponse:
    with db.tx() as session:
        add_organisation(
            session=session, actor=user, credit_code=credit_code, name=name,
            legal_name=legal_name, verified_how=verified_how,
        )  # fmt: skip
    return see_other("/operator/organisations")


@router.post("/organisations/members")
@shows_again(
    "/operator/organisations", form="member-form",
    rules={"organisation-unknown": "credit_code", "user-unknown": "username",
           "member-duplicate": "username", "provider-organisation": "username"},
    labels={"role": "org_role"},
)  # fmt: skip
def create_member(
    db: DbDep,
    user: OperatorDep,
    credit_code: Annotated[Name, Form()],
    username: Annotated[Name, Form()],
    role: Annotated[OrgRole, Form()] = OrgRole.member,
) -> RedirectResponse:
    """The credit code travels in the form, not the URL (no data values in URLs)."""
    with db.tx() as session:
        add_member(
            session=session, actor=user, credit_code=credit_code, username=username, role=role
        )
    return see_other("/operator/organisations")


@router.get("/identities")
def identities(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    """Accounts and their real-name status; after a refusal, the form again without the ID
    number (it is never written back into a page)."""
    with db.tx() as session:
        people = list_identities(session, user)
        return render(request, "operator/identities.html", {"people": people})


@router.post("/identities")
@shows_again(
    "/operator/identities", form="identity-form",
    rules={"fields": required("legal_name", "verified_how"), "user-unknown": "username",
           "resident-id": "resident_id", "resident-id-duplicate": "resident_id"},
    labels={"legal_name": "person_legal_name", "resident_id": "resident_id_optional"},
)  # fmt: skip
def verify(
    db: DbDep,
    settings: SettingsDep,
    user: OperatorDep,
    username: Annotated[Name, Form()] = "",
    legal_name: Annotated[Name, Form()] = "",
    verified_how: Annotated[Name, Form()] = "",
    resident_id: Annotated[Name, Form()] = "",
) -> Response:
    """Record a real name the operator has verified."""
    with db.tx() as session:
        verify_identity(
            session=session, actor=user, username=username, legal_name=legal_name,
            verified_how=verified_how, resident_id=resident_id or None,
            secret_key=settings.secret_key,
        )  # fmt: skip
    return see_other("/operator/identities")
