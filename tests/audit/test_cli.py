"""``sandbox audit`` on the command line: output and exit status for each outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from sandbox.cli.audit import audit_app
from sandbox.db.base import transaction
from tests.audit.conftest import append

runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> list[str]:
    return ["--keys-dir", str(tmp_path / "keys")]


def _run(*args: str) -> Result:
    return runner.invoke(audit_app, list(args))


def test_verify_says_ok_with_the_count(db_url: str, factory: sessionmaker[Session]) -> None:
    append(factory, 3)
    result = _run("verify", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert "OK: 3 events verified" in result.stdout


def test_verify_names_each_problem_and_exits_1(db_url: str, factory: sessionmaker[Session]) -> None:
    append(factory, 3)
    with transaction(factory) as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    result = _run("verify", "--db", db_url)
    assert result.exit_code == 1
    assert "seq 2: edited:" in result.stdout


def test_a_kept_checkpoint_catches_a_rewritten_record(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path, keys: list[str]
) -> None:
    append(factory, 3)
    kept = tmp_path / "kept.json"
    made = _run("checkpoint", "--db", db_url, "--out", str(kept), *keys)
    assert made.exit_code == 0 and "checkpoint at seq 3" in made.stdout
    with transaction(factory) as session:  # the operator empties and restarts the record
        session.execute(text("DELETE FROM audit_events"))
        session.execute(text("DELETE FROM audit_checkpoints"))
    append(factory, 3, actor="mallory")
    assert _run("verify", "--db", db_url, *keys).exit_code == 0
    result = _run("verify", "--db", db_url, "--checkpoint", str(kept), *keys)
    assert result.exit_code == 1
    assert "seq 3: checkpoint:" in result.stdout


def test_checkpoint_prints_json_without_out(
    db_url: str, factory: sessionmaker[Session], keys: list[str]
) -> None:
    append(factory, 2)
    result = _run("checkpoint", "--db", db_url, *keys)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["seq"] == 2


def test_export_then_verify_the_file_offline(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path, keys: list[str]
) -> None:
    append(factory, 4)
    out = tmp_path / "record.jsonl"
    exported = _run("export", "--db", db_url, "--out", str(out), *keys)
    assert exported.exit_code == 0 and "4 events" in exported.stdout
    result = _run("verify", "--export", str(out))
    assert result.exit_code == 0 and "OK: 4 events verified" in result.stdout


def test_a_database_without_a_record_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("verify", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 2
    assert "has no audit record (table audit_events is missing)" in result.stderr


def test_an_unreadable_checkpoint_file_is_a_usage_error(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = _run("verify", "--db", db_url, "--checkpoint", str(bad))
    assert result.exit_code == 2
    assert "exactly the fields" in result.stderr
