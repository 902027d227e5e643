"""Revision 0007 (import requests) upgrades a database made by revision 0006 that holds an
agreement: the table appears empty, an import request of that agreement can be stored, and
the downgrade removes it again; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect, select

from export_review.models import ImportRequest
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import alembic_config
from tests.databases import fresh_postgres_database

AT = datetime(2026, 5, 1, 8, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        database = fresh_postgres_database()
    with database as url:
        yield url


def test_0007_adds_import_requests_to_a_database_with_agreements(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0006")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        agreements = sa.Table("agreements", sa.MetaData(), autoload_with=conn)
        conn.execute(
            agreements.insert(),
            {"id": "AGR-1", "provider": "city-health-commission", "status": "active",
             "version": 1, "valid_from": date(2026, 1, 1), "valid_until": date(2027, 1, 1),
             "spec": {}, "status_reason": "", "created_at": AT, "updated_at": AT},
        )  # fmt: skip
    assert "import_requests" not in inspect(engine).get_table_names()

    command.upgrade(config, "0007")
    with transaction(make_sessionmaker(engine)) as session:
        assert session.scalars(select(ImportRequest)).all() == []
        session.add(
            ImportRequest(agreement_id="AGR-1", author="alice", purpose="rates", name="d.csv",
                          path="", sha256="0" * 64, size=3, status="submitted")
        )  # fmt: skip
    with transaction(make_sessionmaker(engine)) as session:
        stored = session.scalars(select(ImportRequest)).one()
        assert (stored.name, stored.approvals, stored.checks, stored.answer) == (
            "d.csv", [], {}, ""
        )  # fmt: skip

    command.downgrade(config, "0006")
    assert "import_requests" not in inspect(engine).get_table_names()
    engine.dispose()
