"""The `sandbox` command line over the same services and permission checks as the API,
and `sandbox run` (what `make run` starts) serving the seeded demo over real HTTP."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from sandbox.cli.main import app
from tests.control_plane.helpers import agreement

runner = CliRunner()


def test_publish_reads_the_encoding_and_header_row_it_is_given(cli_env, tmp_path: Path):
    entry = tmp_path / "visits.yaml"
    entry.write_text(
        "name: march_visits\ntitle: 门诊\nprovider: city-health-commission\ndomain: health\n"
        "summary: x\nopen_class: conditional\nconditions: x\nupdate_frequency: monthly\n"
        "contact: a@b.invalid\ncolumns:\n- {name: district, type: VARCHAR}\n"
        "- {name: cost, type: DOUBLE}\n",
        encoding="utf-8",
    )
    data = tmp_path / "门诊.csv"
    data.write_bytes('单位：元,,2024年3月\ndistrict,cost\n梁溪区,"1,234.5"\n'.encode("gbk"))

    def publish(*options: str):  # noqa: ANN202
        args = ["catalog", "publish", str(entry), "--data", str(data), *options]
        return runner.invoke(app, [*args, "--as", "health"])

    refused = publish("--encoding", "utf-8", "--header-row", "2")
    assert refused.exit_code == 1
    assert "门诊.csv: row 1, column A cannot be read as UTF-8" in refused.output
    done = publish("--encoding", "gbk", "--header-row", "2")
    assert done.exit_code == 0 and '"status": "under_review"' in done.output, done.output


def test_publish_import_export_and_verify(cli_env, catalog_dir, tmp_path: Path):
    entry = str(catalog_dir / "clinic_visits.yaml")
    refused = runner.invoke(app, ["catalog", "publish", entry, "--as", "alice"])
    assert refused.exit_code == 1 and "[role]" in refused.output
    done = runner.invoke(app, ["catalog", "publish", entry, "--as", "health"])
    assert done.exit_code == 0, done.output
    assert '"version": 1' in done.output and '"status": "under_review"' in done.output
    approved = runner.invoke(
        app, ["catalog", "review", "1", "--approve", "--legality-review", "Lawful.", "--as", "auth"]
    )
    assert approved.exit_code == 0, approved.output
    listed = runner.invoke(app, ["catalog", "list"])
    assert listed.output.startswith("clinic_visits\tconditional\tv1")
    path = tmp_path / "agr.yaml"
    path.write_text(
        agreement().model_dump_json(), encoding="utf-8"
    )  # JSON is YAML: the contract loader reads it
    assert runner.invoke(app, ["agreement", "import", str(path), "--as", "health"]).exit_code == 0
    out = tmp_path / "back.yaml"
    exported = runner.invoke(
        app, ["agreement", "export", "AGR-T-0001", "--as", "alice", "--out", str(out)]
    )
    assert exported.exit_code == 0 and "id: AGR-T-0001" in out.read_text(encoding="utf-8")
    hidden = runner.invoke(app, ["agreement", "export", "AGR-T-0001", "--as", "bob"])
    assert hidden.exit_code == 1 and "does not exist" in hidden.output
    bad = runner.invoke(app, ["agreement", "suspend", "AGR-T-0001", "--reason", "x", "--as", "ops"])
    assert bad.exit_code == 1 and "rectification period" in bad.output
    ok = runner.invoke(
        app, ["agreement", "suspend", "AGR-T-0001", "--reason", "x", "--days", "3", "--as", "ops"]
    )
    assert ok.exit_code == 0 and ok.output.strip() == "AGR-T-0001 suspended"
    verified = runner.invoke(app, ["audit", "verify"])
    # 21: the fixture's two real-name verifications and four authenticators set up (two
    # events each), then this test's 11 events.
    assert verified.exit_code == 0 and "OK: 21 events verified" in verified.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_seeds_the_demo_and_serves_it(tmp_path: Path):
    port = _free_port()
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(tmp_path / "var"),
        "SANDBOX_PORT": str(port),
        "SANDBOX_ENVIRONMENT": "development",
    }
    env.pop("SANDBOX_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sandbox.cli.main import app; app()", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{base}/api/catalog", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        catalog = httpx.get(f"{base}/api/catalog").json()
        names = {d["name"] for d in catalog}
        assert {"outpatient_visits", "enterprise_registry", "population"} <= names
        assert "social_assistance_recipients" not in names  # non-open stays out
        login = httpx.post(
            f"{base}/api/auth/token", data={"username": "alice", "password": "sandbox-demo-2026"}
        )
        assert login.status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert f"platform:  {base}/" in output and "alice" in output and "sandbox-demo-2026" in output
    # The recurring duties ran beside the server: the record's head is signed.
    assert "duties:    lifecycle, notices, backups, checkpoint every 3600 s" in output
    with sqlite3.connect(tmp_path / "var" / "sandbox.db") as db:
        head, signed = db.execute(
            "SELECT (SELECT max(seq) FROM audit_events), (SELECT max(seq) FROM audit_checkpoints)"
        ).fetchone()
    assert signed is not None and 0 < signed <= head
