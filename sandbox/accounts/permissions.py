"""Who may do what: role checks and ownership checks shared by the API, the CLI and the pages.

A provider acts only on its own datasets; a researcher sees only their own
applications and agreements (issue 2, item 9).
"""

from __future__ import annotations

from sandbox.accounts.models import Role, User
from sandbox.errors import PermissionDenied


def require_role(actor: User, *roles: Role) -> None:
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"this action needs the role {allowed}; you are signed in as {actor.role}",
            rule="role",
        )


def require_provider_of(actor: User, provider: str) -> None:
    """Providers act only on what they provide."""
    require_role(actor, Role.provider)
    if actor.organisation != provider:
        raise PermissionDenied(
            f"only the provider {provider!r} may do this; you act for {actor.organisation!r}",
            rule="provider-owns",
        )


def can_see_agreement(actor: User, provider: str, researchers: list[str]) -> bool:
    if actor.role in (Role.operator, Role.authority):
        return True
    if actor.role == Role.provider:
        return actor.organisation == provider
    return actor.username in researchers
