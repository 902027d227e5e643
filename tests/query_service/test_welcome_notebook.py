"""The welcome notebook and the client's tables()/describe() through a real query service on
loopback (issue 13, item 2): the service serves the caller's agreement's notebook, the
workspace's start writes it into a new home and then runs the server, and the notebook's
cells run against the service as a researcher would run them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from export_review.ledger import budget_state
from export_review.models import ExportRequest
from query_guard.client import QueryRefused, connect
from query_guard.workspace_start import WELCOME
from sandbox.db.base import transaction
from tests.query_service.conftest import AGGREGATE, RECORD, World, bearer


def test_tables_and_describe_answer_through_the_service(live_url: str, world: World) -> None:
    with connect(f"{live_url}/qs", world.tokens[AGGREGATE], progress=None) as db:
        tables = db.tables()
        assert tables.to_dict("records") == [
            {
                "view": "clinic_visits",
                "title": "Clinic visits",
                "columns": 3,
                "row_filter": None,
                "suspended": False,
            }
        ]
        described = db.describe("clinic_visits")
        assert list(described.columns) == ["column", "label", "type", "sensitivity", "description"]
        assert described[["column", "type", "sensitivity"]].values.tolist() == [
            ["patient_id", "BIGINT", "identifier"],  # a pseudonym in the view
            ["district", "VARCHAR", "quasi_identifier"],
            ["cost", "DOUBLE", "none"],
        ]
        with pytest.raises(QueryRefused) as unknown:
            db.describe("secret_registry")
        assert unknown.value.rule == "unknown-view" and "clinic_visits" in unknown.value.message


def test_the_service_serves_the_callers_welcome_notebook(live_url: str, world: World) -> None:
    for agreement_id, mode in ((AGGREGATE, "aggregate"), (RECORD, "record")):
        with connect(f"{live_url}/qs", world.tokens[agreement_id], progress=None) as db:
            notebook = db.welcome_notebook()
        assert notebook["nbformat"] == 4
        assert notebook["metadata"]["sandbox"] == {"agreement": agreement_id, "mode": mode}
        assert any("`clinic_visits`" in c["source"] for c in notebook["cells"])
    anonymous = httpx.get(f"{live_url}/qs/welcome.ipynb")
    assert anonymous.status_code == 401 and anonymous.json()["rule"] == "workspace-token"


def _start(home: Path, url: str, token: str, command: list[str]) -> subprocess.CompletedProcess:
    """``python -m query_guard.workspace_start COMMAND`` as the hub starts a workspace."""
    env = {**os.environ, "HOME": str(home), "SANDBOX_QUERY_URL": url, "SANDBOX_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "query_guard.workspace_start", *command],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workspace_start_writes_the_notebook_into_a_new_home_then_runs_the_command(
    live_url: str, world: World, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    show = [sys.executable, "-c", "import os; print('server', os.getcwd())"]
    started = _start(home, f"{live_url}/qs", world.tokens[AGGREGATE], show)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"server {home}"  # the command ran after the notebook
    notebook = json.loads((home / WELCOME).read_text(encoding="utf-8"))
    assert notebook["metadata"]["sandbox"]["agreement"] == AGGREGATE
    assert [p.name for p in home.iterdir()] == [WELCOME]  # no partial file left

    # A researcher's edits survive the next start.
    (home / WELCOME).write_text('{"edited": true}', encoding="utf-8")
    again = _start(home, f"{live_url}/qs", world.tokens[AGGREGATE], show)
    assert again.returncode == 0 and json.loads((home / WELCOME).read_text()) == {"edited": True}

    # Without a usable token the server still starts, with no notebook.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    refused = _start(fresh, f"{live_url}/qs", "not-a-token", show)
    assert refused.returncode == 0 and refused.stdout.strip() == f"server {fresh}"
    assert "no welcome notebook" in refused.stderr and not (fresh / WELCOME).exists()


def _run_cells(notebook: dict, namespace: dict, switches: dict[str, bool]) -> str:
    """Run every code cell in order as the kernel would, printing into one transcript."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            exec(compile(cell["source"], cell["id"], "exec"), namespace)  # noqa: S102
            namespace.update(switches)
    return out.getvalue()


def test_the_welcome_notebook_runs_against_the_service(
    live_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_QUERY_URL", f"{live_url}/qs")
    monkeypatch.setenv("SANDBOX_TOKEN", world.tokens[AGGREGATE])
    monkeypatch.chdir(tmp_path)
    notebook = httpx.get(f"{live_url}/qs/welcome.ipynb", headers=bearer(world.tokens[AGGREGATE]))
    cells = notebook.json()

    # As written: nothing spent, nothing submitted; every query cell answers.
    namespace: dict = {}
    quiet = _run_cells(cells, namespace, {})
    for i in (1, 2, 3):
        assert len(namespace[f"df{i}"]) > 0, namespace[f"SQL_{i}"]
    assert "[QG-020]" in quiet  # the refused example, explained by its rule
    assert "[export-output-form]" in quiet  # this agreement lets only DP tables leave
    with transaction(world.factory) as session:
        assert session.scalar(select(func.count()).select_from(ExportRequest)) == 0

    # Switched on: the DP release is charged and leaves as a dp_table export request.
    spent = _run_cells(cells, {}, {"SPEND_BUDGET": True, "SUBMIT_EXPORTS": True})
    assert "ε spent 0.1" in spent and "export request" in spent
    with transaction(world.factory) as session:
        state = budget_state(session, AGGREGATE)
        assert state.epsilon_total - state.epsilon_remaining == pytest.approx(0.1)
        kinds = session.scalars(select(ExportRequest.kind)).all()
    assert kinds == ["dp"]  # the table and its figure were refused before submission
