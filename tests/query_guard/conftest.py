"""Real per-agreement DuckDB files built from generated Parquet/CSV, one per mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly
from query_guard.guard import GuardContext
from sandbox.contracts import load_agreement, load_catalog
from tests.query_guard.data import write_catalog

KEY = b"k" * 32


@dataclass
class Built:
    root: Path
    ctx: GuardContext
    db: Path
    conn: duckdb.DuckDBPyConnection
    raw_ids: list[str]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("guard")
    return root, write_catalog(root)


def _build(world: tuple[Path, list[str]], mode: str) -> Built:
    root, ids = world
    catalog = load_catalog(root / "catalog")
    agreement = load_agreement(root / f"agreement-{mode}.yaml")
    db = build_agreement_database(agreement, catalog, out_path=root / f"{mode}.duckdb", key=KEY)
    conn = open_readonly(db, memory_limit="256MB", threads=1, temp_dir=root / f"tmp-{mode}")
    return Built(root, GuardContext(agreement, catalog), db, conn, ids)


@pytest.fixture(scope="session")
def aggregate(world: tuple[Path, list[str]]) -> Built:
    return _build(world, "aggregate")


@pytest.fixture(scope="session")
def record(world: tuple[Path, list[str]]) -> Built:
    return _build(world, "record")


@pytest.fixture
def built(request: pytest.FixtureRequest, aggregate: Built, record: Built) -> Built:
    return {"aggregate": aggregate, "record": record}[request.param]
