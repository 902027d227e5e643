"""Dependencies shared by the routers: the database, the current user, role checks.

Each request that changes state runs its service call inside one transaction
(``db.tx()``): a refusal rolls back everything, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.accounts.service import resolve_token
from sandbox.db.base import read_only, transaction
from sandbox.errors import PermissionDenied
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar

SESSION_COOKIE = "sandbox_session"


class Db:
    """The request's handle on the database."""

    def __init__(self, factory: sessionmaker[Session]):
        self.factory = factory

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with transaction(self.factory) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """For long reads such as verifying the record: writers are not held up."""
        with read_only(self.factory) as session:
            yield session


def get_db(request: Request) -> Db:
    return Db(request.app.state.sessionmaker)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_calendar(request: Request) -> WorkCalendar:
    return request.app.state.calendar


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def optional_user(request: Request, db: Annotated[Db, Depends(get_db)]) -> User | None:
    token = bearer_token(request)
    if not token:
        return None
    with db.tx() as session:
        found = resolve_token(session, token)
    if found is None:
        return None
    user, row = found
    if row.agreement_id is not None:
        # Workspace tokens open the query service only, never the platform API.
        return None
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise PermissionDenied("sign in first (a valid bearer token is required)", rule="auth")
    return user


def role(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that admits only the given roles."""

    def _check(user: Annotated[User, Depends(current_user)]) -> User:
        require_role(user, *roles)
        return user

    return _check


DbDep = Annotated[Db, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CalendarDep = Annotated[WorkCalendar, Depends(get_calendar)]
UserDep = Annotated[User, Depends(current_user)]
MaybeUserDep = Annotated[User | None, Depends(optional_user)]
ResearcherDep = Annotated[User, Depends(role(Role.researcher))]
ProviderDep = Annotated[User, Depends(role(Role.provider))]
OperatorDep = Annotated[User, Depends(role(Role.operator))]
OversightDep = Annotated[User, Depends(role(Role.operator, Role.authority))]
