"""Revision 0004 (export requests name their output form) upgrades a database made by revision
0003 holding requests of the old shape (a figure as the researcher's image with its
figure_data): each old request gets the form its files named, everything else it held is
kept, figure_data goes, and a new request needs its form; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from export_review.models import ExportRequest
from export_review.requests import figure_spec
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import alembic_config
from sandbox.errors import PolicyViolation
from tests.databases import fresh_postgres_database

AT = datetime(2026, 5, 1, 8, tzinfo=UTC)
#: Old requests: (kind, status, file names) and the form each must get.
OLD = [
    ("dp", "released", [], "dp_table"),
    ("files", "checked", ["figure.PNG", "figure_data.csv"], "figure"),
    ("files", "released", ["table.csv"], "table"),
    ("files", "returned", ["results.json"], "table"),
    ("files", "in_review", ["report.md", "notes.txt"], "report"),
]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        database = fresh_postgres_database()
    with database as url:
        yield url


def _old_request(n: int, kind: str, status: str) -> dict[str, Any]:
    return {
        "id": n,
        "agreement_id": "AGR-1",
        "author": "alice",
        "kind": kind,
        "purpose": f"Output {n}",
        "queries": ["SELECT district, count(*) AS n FROM visits GROUP BY district"],
        "dp_result": {"columns": ["district", "n"], "rows": [["A", 12]]} if kind == "dp" else None,
        "figure_data": {"x": ["A", "B"], "y": [12, 15]} if n == 2 else {},
        "checks": {"files": n},
        "status": status,
        "status_reason": "",
        "bundle_path": f"/var/releases/AGR-1-export-{n}" if status == "released" else None,
        "created_at": AT,
        "updated_at": AT,
    }


def _fill_as_0003(conn: sa.Connection) -> None:
    tables = sa.MetaData()
    tables.reflect(conn, only=["agreements", "export_requests", "export_files"])
    conn.execute(
        tables.tables["agreements"].insert(),
        {"id": "AGR-1", "provider": "city-health-commission", "status": "active",
         "version": 1, "valid_from": date(2026, 1, 1), "valid_until": date(2027, 1, 1),
         "spec": {}, "status_reason": "", "created_at": AT, "updated_at": AT},
    )  # fmt: skip
    requests = [_old_request(n, kind, status) for n, (kind, status, _, _) in enumerate(OLD, 1)]
    conn.execute(tables.tables["export_requests"].insert(), requests)
    files = [
        {"request_id": n, "name": name, "path": f"/var/exports/{n}/{name}", "sha256": "0" * 64,
         "size": 10}
        for n, (_, _, names, _) in enumerate(OLD, 1)
        for name in names
    ]  # fmt: skip
    conn.execute(tables.tables["export_files"].insert(), files)


def test_0004_gives_old_requests_the_form_their_files_named(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0003")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            _fill_as_0003(conn)
        command.upgrade(config, "head")

        columns = {c["name"]: c for c in inspect(engine).get_columns("export_requests")}
        assert "figure_data" not in columns and "chart" in columns
        assert columns["form"]["nullable"] is False and columns["form"]["default"] is None
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            kept = session.scalars(select(ExportRequest).order_by(ExportRequest.id)).all()
            assert [r.form for r in kept] == [form for *_, form in OLD]
            assert all(r.chart is None for r in kept)  # no specification was ever made
            for req, (kind, status, _, _) in zip(kept, OLD, strict=True):
                old = _old_request(req.id, kind, status)
                assert (req.kind, req.status, req.purpose, req.queries, req.dp_result,
                        req.checks, req.bundle_path) == (
                    kind, status, old["purpose"], old["queries"], old["dp_result"],
                    old["checks"], old["bundle_path"])  # fmt: skip
            with pytest.raises(PolicyViolation) as unreleasable:
                figure_spec(kept[1].chart)  # the old figure cannot leave as a drawing of nothing
            assert unreleasable.value.rule == "export-chart"

        with pytest.raises(IntegrityError), engine.begin() as conn:  # a form is required
            conn.execute(
                sa.text(
                    "INSERT INTO export_requests (agreement_id, author, kind, purpose, queries,"
                    " checks, status, status_reason, created_at, updated_at) VALUES ('AGR-1',"
                    " 'alice', 'files', 'p', '[]', '{}', 'draft', '', :at, :at)"
                ),
                {"at": AT},
            )
    finally:
        engine.dispose()
