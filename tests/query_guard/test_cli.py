"""``sandbox guard check|run`` per the contract, in-process and as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sandbox.cli.guard import guard_app
from tests.query_guard.data import SMALL_DISTRICT

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _args(world, command: str, sql: str, mode: str = "aggregate") -> list[str]:
    root, _ = world
    return [
        command,
        "--catalog",
        str(root / "catalog"),
        "--agreement",
        str(root / f"agreement-{mode}.yaml"),
        "--sql",
        sql,
    ]


def test_check_prints_one_json_object_and_exits_0(world) -> None:
    for sql, action in [
        ("SELECT district, count(*) FROM visits GROUP BY 1", "rewrite"),
        ("SELECT patient_id FROM visits", "block"),
    ]:
        result = runner.invoke(guard_app, _args(world, "check", sql))
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        assert data["action"] == action and {"action", "sql", "reasons"} <= set(data)
        assert all({"rule", "message"} <= set(r) for r in data["reasons"])


def test_run_prints_csv_with_header(world) -> None:
    result = runner.invoke(
        guard_app,
        _args(world, "run", "SELECT district, count(*) AS n FROM visits GROUP BY 1 ORDER BY 1"),
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["district", "n"] and len(rows) == 5
    assert SMALL_DISTRICT not in result.stdout


def test_run_blocked_prints_json_on_stderr_and_exits_3(world) -> None:
    result = runner.invoke(guard_app, _args(world, "run", "SELECT * FROM read_csv('/etc/passwd')"))
    assert result.exit_code == 3 and result.stdout == ""
    assert json.loads(result.stderr)["action"] == "block"


def test_config_errors_exit_2(world, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    root, _ = world
    result = runner.invoke(
        guard_app,
        ["check", "--catalog", str(root / "catalog"), "--agreement", str(bad), "--sql", "SELECT 1"],
    )
    assert result.exit_code == 2 and "error" in result.stderr
    result = runner.invoke(guard_app, [*_args(world, "check", "SELECT 1"), "--bogus"])
    assert result.exit_code == 2


def test_run_in_a_subprocess(world) -> None:
    code = "from sandbox.cli.guard import guard_app; guard_app()"
    args = _args(world, "run", "SELECT district, cost FROM visits ORDER BY cost LIMIT 3", "record")
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "district,cost" and len(proc.stdout.splitlines()) == 4
