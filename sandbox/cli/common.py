"""What every CLI command needs: the database, the acting user, and error reporting.

Commands that change state act as a named platform user (``--as``) and go
through the same service functions and permission checks as the web.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.errors import NotFound, SandboxError
from sandbox.settings import get_settings


@contextmanager
def platform_sessions(db_url: str | None = None) -> Iterator[sessionmaker[Session]]:
    """Sessions on the platform database (or ``db_url``), schema brought up first, for
    services that open their own transactions; the engine is closed afterwards."""
    url = db_url or get_settings().db_url
    ensure_schema(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def unit_of_work(db_url: str | None = None) -> Iterator[Session]:
    """One transaction on the platform database (or ``db_url``), schema brought up first."""
    with platform_sessions(db_url) as factory, transaction(factory) as session:
        yield session


def acting_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no platform user {username!r}", rule="user-unknown")
    return user


@contextmanager
def refusals_exit(code: int = 1) -> Iterator[None]:
    """Print a refusal as ``error [rule; article]`` on stderr and exit with ``code``."""
    try:
        yield
    except SandboxError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(code)


AS_OPTION = typer.Option(..., "--as", help="Platform user to act as (same permissions as the web).")
