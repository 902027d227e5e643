"""The register of organisations (Wuxi Art.6; Rizhao Art.10): the operator adds
organisations it has verified and links members; the authority reads it.

The rules (credit code check, one organisation per account, a provider's name)
are in :mod:`sandbox.identity.organisations`; these routes only call them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.api.deps import DbDep, OperatorDep, OversightDep
from sandbox.api.routes.organisations import organisation_view
from sandbox.identity.models import OrgRole
from sandbox.identity.organisations import add_member, add_organisation, list_organisations
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/operator/organisations")


@router.get("")
def index(request: Request, db: DbDep, user: OversightDep) -> HTMLResponse:
    with db.tx() as session:
        organisations = [organisation_view(session, o) for o in list_organisations(session, user)]
    return render(
        request,
        "operator/organisations.html",
        {"organisations": organisations, "org_roles": [r.value for r in OrgRole]},
    )


@router.post("")
def create(
    db: DbDep,
    user: OperatorDep,
    credit_code: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    legal_name: Annotated[str, Form()] = "",
    verified_how: Annotated[str, Form()] = "",
) -> RedirectResponse:
    with db.tx() as session:
        add_organisation(
            session=session, actor=user, credit_code=credit_code, name=name,
            legal_name=legal_name, verified_how=verified_how,
        )  # fmt: skip
    return see_other("/operator/organisations")


@router.post("/members")
def create_member(
    db: DbDep,
    user: OperatorDep,
    credit_code: Annotated[str, Form()],
    username: Annotated[str, Form()],
    role: Annotated[OrgRole, Form()] = OrgRole.member,
) -> RedirectResponse:
    """The credit code travels in the form, not the URL (no data values in URLs)."""
    with db.tx() as session:
        add_member(
            session=session, actor=user, credit_code=credit_code, username=username, role=role
        )
    return see_other("/operator/organisations")
