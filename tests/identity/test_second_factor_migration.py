"""Revision 0006 (the second factor) upgrades a database made by revision 0005 and keeps its
sign-in attempts, which presented no second factor; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from sandbox.accounts.attempts import SignInAttempt
from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import alembic_config
from tests.second_factor import enrol, next_code


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        from tests.databases import fresh_postgres_database

        database = fresh_postgres_database()
    with database as url:
        yield url


def test_0006_keeps_the_attempts_and_adds_the_second_factor(empty_url: str, tmp_path: Path) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0005")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sign_in_attempts (at, username, address, channel, succeeded)"
                    " VALUES (:at, 'ops', '203.0.113.7', 'web', :ok)"
                ),
                {"at": datetime(2026, 5, 1, 8, tzinfo=UTC), "ok": False},
            )
        command.upgrade(config, "head")
        tables = set(inspect(engine).get_table_names())
        assert {"totp_factors", "recovery_codes", "pending_sign_ins"} <= tables
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            (old,) = session.scalars(select(SignInAttempt)).all()
            assert (old.username, old.factor, old.succeeded) == ("ops", "", False)
            create_user(
                session=session, username="ops", password="correct-horse-battery",
                role=Role.operator, display_name="Ops",
            )  # fmt: skip
        keys = tmp_path / "keys"
        assert len(enrol(factory, keys, "ops")) == 10
        assert next_code(factory, keys, "ops").isdigit()
        command.downgrade(config, "0005")
        assert "totp_factors" not in inspect(engine).get_table_names()
        command.upgrade(config, "head")
    finally:
        engine.dispose()
