"""``sandbox org``: the operator's register of organisations, members, identity and OIDC links.

Same service functions and permission checks as ``/api/organisations``.
"""

from __future__ import annotations

import getpass

import typer

from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.identity.models import OrgRole
from sandbox.identity.oidc import OidcConfig, link_subject
from sandbox.identity.organisations import (
    add_member,
    add_organisation,
    list_organisations,
    members_of,
    verify_identity,
)
from sandbox.settings import get_settings

org_app = typer.Typer(no_args_is_help=True)


@org_app.command("add")
def add(
    credit_code: str,
    name: str = typer.Option(..., help="Short name; a provider's is its datasets' `provider`."),
    legal_name: str = typer.Option(..., help="Registered full name (e.g. 无锡市卫生健康委员会)."),
    verified_how: str = typer.Option(..., help="How the code and name were checked."),
    as_user: str = AS_OPTION,
) -> None:
    """Register an organisation by its unified social credit code (GB 32100 check)."""
    with refusals_exit(), unit_of_work() as session:
        org = add_organisation(
            session=session,
            actor=acting_user(session, as_user),
            credit_code=credit_code,
            name=name,
            legal_name=legal_name,
            verified_how=verified_how,
        )
        typer.echo(f"organisation {org.credit_code} {org.name} registered")


@org_app.command("list")
def list_(as_user: str = AS_OPTION) -> None:
    """One line per organisation, then one indented line per member."""
    with refusals_exit(), unit_of_work() as session:
        for org in list_organisations(session, acting_user(session, as_user)):
            typer.echo(f"{org.credit_code}\t{org.name}\t{org.legal_name}")
            for user, membership in members_of(session, org):
                typer.echo(f"  {user.username}\t{membership.role}\t{user.role}")


@org_app.command("add-member")
def add_member_(
    credit_code: str,
    username: str,
    role: OrgRole = typer.Option(OrgRole.member, help="The member's standing in it."),
    as_user: str = AS_OPTION,
) -> None:
    """Link a user to an organisation (their `organisation` becomes its name)."""
    with refusals_exit(), unit_of_work() as session:
        add_member(
            session=session,
            actor=acting_user(session, as_user),
            credit_code=credit_code,
            username=username,
            role=role,
        )
        typer.echo(f"{username} is now a {role.value} of {credit_code}")


@org_app.command("verify-person")
def verify_person(
    username: str,
    legal_name: str = typer.Option(..., help="Real name as on the identity document."),
    verified_how: str = typer.Option(..., help="How the identity was checked."),
    with_resident_id: bool = typer.Option(
        False, help="Ask for the resident ID number (kept only as a keyed hash)."
    ),
    as_user: str = AS_OPTION,
) -> None:
    """Record a natural person's verified real name; the ID number is asked, never an argument."""
    resident_id = getpass.getpass("resident ID number: ") if with_resident_id else None
    settings = get_settings()
    with refusals_exit(), unit_of_work() as session:
        verify_identity(
            session=session,
            actor=acting_user(session, as_user),
            username=username,
            legal_name=legal_name,
            verified_how=verified_how,
            resident_id=resident_id,
            secret_key=settings.secret_key,
        )
        typer.echo(f"{username}: identity verified")


@org_app.command("link-oidc")
def link_oidc(username: str, subject: str, as_user: str = AS_OPTION) -> None:
    """Let the configured OpenID Connect provider's ``subject`` sign in as ``username``."""
    with refusals_exit(), unit_of_work() as session:
        issuer = OidcConfig.from_settings(get_settings()).issuer
        link_subject(
            session=session,
            actor=acting_user(session, as_user),
            username=username,
            issuer=issuer,
            subject=subject,
        )
        typer.echo(f"{username} may sign in as {subject} at {issuer}")
