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
from sqlalchemy.orm import Session

from sandbox.accounts.models import User
from sandbox.api.deps import DbDep, OperatorDep, OversightDep, SettingsDep
from sandbox.api.routes.organisations import organisation_view
from sandbox.errors import SandboxError
from sandbox.identity.models import OrgRole
from sandbox.identity.organisations import (
    add_member,
    add_organisation,
    list_identities,
    list_organisations,
    verify_identity,
)
from sandbox.input_limits import Name
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


def _identities_page(
    request: Request, session: Session, user: User, form: dict[str, str] | None = None,
    error: SandboxError | None = None,
) -> HTMLResponse:  # fmt: skip
    """Accounts and their real-name status; after a refusal, the form again without the ID
    number (it is never written back into a page)."""
    return render(
        request,
        "operator/identities.html",
        {"people": list_identities(session, user), "form": form or {}, "error": error},
        status_code=error.status_code if error else 200,
    )


@router.get("/identities")
def identities(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    with db.tx() as session:
        return _identities_page(request, session, user)


@router.post("/identities")
def verify(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    user: OperatorDep,
    username: Annotated[Name, Form()] = "",
    legal_name: Annotated[Name, Form()] = "",
    verified_how: Annotated[Name, Form()] = "",
    resident_id: Annotated[Name, Form()] = "",
) -> Response:
    """Record a real name the operator has verified; a refusal shows the form again."""
    try:
        with db.tx() as session:
            verify_identity(
                session=session, actor=user, username=username, legal_name=legal_name,
                verified_how=verified_how, resident_id=resident_id or None,
                secret_key=settings.secret_key,
            )  # fmt: skip
    except SandboxError as exc:
        kept = {"username": username, "legal_name": legal_name, "verified_how": verified_how}
        with db.tx() as session:
            return _identities_page(request, session, user, kept, exc)
    return see_other("/operator/identities")
