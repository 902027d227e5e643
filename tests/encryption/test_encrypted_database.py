"""A per-agreement database built encrypted by DuckDB itself: its bytes hold no stored value,
and it opens on the hardened engine only with its key."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from sandbox.contracts import Agreement, CatalogEntry
from sandbox.errors import SandboxError
from sandbox.refusal_text import say

#: A value no DuckDB file holds unless it stores this dataset in clear.
PLANTED = "ZQX-planted-distinctive-value"


def _world(tmp_path: Path) -> tuple[Agreement, dict[str, CatalogEntry]]:
    rows = [{"person": f"p{i % 50}", "note": f"{PLANTED}-{i % 7}", "n": i} for i in range(2000)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "notes.parquet")
    entry = CatalogEntry.model_validate(
        {
            "name": "notes",
            "title": "Notes",
            "provider": "p",
            "domain": "d",
            "summary": "s",
            "open_class": "conditional",
            "conditions": "c",
            "format": "parquet",
            "update_frequency": "monthly",
            "contact": "a@b.invalid",
            "source": str(tmp_path / "notes.parquet"),
            "entity": "person",
            "columns": [
                {"name": "person", "type": "VARCHAR", "sensitivity": "identifier"},
                {"name": "note", "type": "VARCHAR", "sensitivity": "none"},
                {"name": "n", "type": "BIGINT", "sensitivity": "none"},
            ],
        }
    )
    agreement = Agreement.model_validate(
        {
            "id": "AGR-ENC-1",
            "title": "Encrypted",
            "provider": "p",
            "researchers": ["r"],
            "purpose": "p",
            "mode": "record",
            "valid_from": "2026-01-01",
            "valid_until": "2099-01-01",
            "datasets": {"notes": {"columns": ["person", "note", "n"]}},
        }
    )
    return agreement, {"notes": entry}


def _build(tmp_path: Path, name: str, key: bytes | None) -> Path:
    agreement, catalog = _world(tmp_path)
    return build_agreement_database(
        agreement,
        catalog,
        out_path=tmp_path / f"{name}.duckdb",
        key=b"p" * 32,
        encryption_key=key,
    )


def test_encrypted_file_holds_no_stored_value_and_opens_only_with_its_key(tmp_path: Path):
    key = secrets.token_bytes(32)
    plain, encrypted = _build(tmp_path, "plain", None), _build(tmp_path, "enc", key)
    assert PLANTED.encode() in plain.read_bytes()  # the probe finds a value stored in clear
    assert PLANTED.encode() not in encrypted.read_bytes()
    assert not encrypted.with_name(encrypted.name + ".wal").exists()

    with pytest.raises(duckdb.Error, match="without a key"):
        duckdb.connect(str(encrypted), read_only=True)
    for wrong in (None, secrets.token_bytes(32)):
        with pytest.raises(SandboxError) as refused:
            open_readonly(encrypted, temp_dir=tmp_path / "tmp", encryption_key=wrong)
        assert refused.value.rule == "at-rest-key"
        said = say(refused.value.rule, refused.value.message, "zh")  # the operator's page
        assert said and said.startswith(f"数据库 {encrypted.name} "), said
        assert said.endswith(
            "无法打开：它由另一密钥加密，或加密状态与预期不符；请重新开通以重建数据库"
        )

    conn = open_readonly(encrypted, temp_dir=tmp_path / "tmp", encryption_key=key)
    try:
        sql = "SELECT count(*) AS n FROM notes WHERE note LIKE 'ZQX-planted%'"
        assert run_query(conn, sql, timeout_s=10).to_pylist() == [{"n": 2000}]
        settings = "SELECT current_setting('temp_file_encryption')"
        assert conn.execute(settings).fetchone() == (True,)  # spill is encrypted too
        with pytest.raises(SandboxError):  # still the read-only, locked engine
            run_query(conn, "CREATE TABLE x AS SELECT 1", timeout_s=10)
    finally:
        conn.close()


def test_a_plain_database_refuses_a_key(tmp_path: Path) -> None:
    plain = _build(tmp_path, "plain", None)
    with pytest.raises(SandboxError) as refused:
        open_readonly(plain, temp_dir=tmp_path / "tmp", encryption_key=secrets.token_bytes(32))
    assert refused.value.rule == "at-rest-key"


def test_a_query_that_spills_runs_with_its_spill_encrypted(tmp_path: Path) -> None:
    """DuckDB encrypts what an encrypted database's queries spill; writing it needs the same
    crypto setting as the build (query_guard.at_rest), without which this query would fail."""
    key = secrets.token_bytes(32)
    database = _build(tmp_path, "enc", key)
    temp = tmp_path / "spill"
    conn = open_readonly(
        database, memory_limit="64MB", threads=1, temp_dir=temp, encryption_key=key
    )
    most, done = [0], threading.Event()

    def count_spill_files() -> None:
        while not done.wait(0.01):
            most[0] = max(most[0], len(list(temp.glob("*"))) if temp.exists() else 0)

    watcher = threading.Thread(target=count_spill_files)
    watcher.start()
    try:
        grouped = "SELECT md5(CAST(i AS VARCHAR)) AS s FROM range(1000000) t(i) GROUP BY s"
        assert conn.execute(f"SELECT count(*) FROM ({grouped})").fetchone() == (1000000,)
    finally:
        done.set()
        watcher.join()
        conn.close()
    assert most[0] > 0  # it did spill
