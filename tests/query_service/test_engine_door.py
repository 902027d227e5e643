"""The engine side of the door: open files follow rebuilds; errors say nothing of the data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from query_guard.engine import open_readonly
from query_guard.service.connections import ConnectionCache
from query_guard.service.queries import QueryFailed, execute
from sandbox.errors import NotFound


def _build(path: Path, rows: list[tuple[str, float]]) -> None:
    """Write a database and rename it into place, as provisioning does."""
    tmp = path.with_suffix(".building")
    con = duckdb.connect(str(tmp))
    con.execute("CREATE TABLE t (name VARCHAR, cost DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)
    con.close()
    os.replace(tmp, path)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ConnectionCache]:
    cache = ConnectionCache(
        lambda p: open_readonly(p, memory_limit="128MB", threads=1, temp_dir=tmp_path)
    )
    yield cache
    cache.close()


def test_a_rebuilt_file_is_reopened(tmp_path: Path, cache: ConnectionCache) -> None:
    db = tmp_path / "a.duckdb"
    _build(db, [("x", 1.0)])
    assert execute(cache, db, "SELECT count(*) FROM t", 5).to_pylist() == [{"count_star()": 1}]
    _build(db, [("x", 1.0), ("y", 2.0)])
    assert execute(cache, db, "SELECT count(*) FROM t", 5).to_pylist() == [{"count_star()": 2}]


def test_engine_errors_do_not_depend_on_data_values(tmp_path: Path, cache: ConnectionCache) -> None:
    rows = [("Zhang San", 300.0), ("Li Si", 12.5)]
    db, plain = tmp_path / "b.duckdb", tmp_path / "plain.duckdb"
    _build(db, rows)
    _build(plain, rows)
    failures = []
    for sql, value in (
        ("SELECT CAST(name AS INTEGER) FROM t", "Zhang San"),  # conversion
        ("SELECT CAST(cost AS UTINYINT) FROM t", "300"),
    ):  # range
        with pytest.raises(duckdb.Error, match=value):  # the engine's own text quotes data
            duckdb.connect(str(plain), read_only=True).execute(sql)
        with pytest.raises(QueryFailed) as caught:
            execute(cache, db, sql, 5)
        failures.append(caught.value.to_dict())
    assert failures[0] == failures[1]
    assert failures[0]["rule"] == "QG-014" and failures[0]["article"]
    assert not any(v in str(failures) for v in ("Zhang", "Li Si", "300", "12.5"))


def test_an_unprovisioned_database_is_refused(tmp_path: Path, cache: ConnectionCache) -> None:
    with pytest.raises(NotFound) as caught:
        execute(cache, tmp_path / "missing.duckdb", "SELECT 1", 5)
    assert caught.value.rule == "workspace-not-provisioned"
