"""``sandbox oversight`` over the same services and permission checks as the API."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.oversight.models import QualityTask

runner = CliRunner()


@pytest.fixture
def cli_env(settings, signed, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("SANDBOX_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(settings.data_dir))
    from sandbox.settings import get_settings

    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["oversight", *args])
    return result.exit_code, result.output


def test_violation_measure_and_register(cli_env):
    record = ("record-violation", "--kind", "beyond_scenario", "--evidence", "joined lists",
              "--agreement", "AGR-T-0001", "--researcher", "alice")  # fmt: skip
    code, out = run(*record, "--as", "health")
    assert code == 1 and "[role]" in out
    code, out = run(*record, "--ref", "audit:3", "--as", "auth")
    assert code == 0 and out.strip() == "violation 1 recorded against alice under AGR-T-0001"
    code, out = run("measure", "1", "--measure", "close", "--reason", "out of scope", "--as", "ops")
    assert code == 1 and "rectification period" in out and "agreement-rectification" in out
    code, out = run("measure", "1", "--measure", "close", "--reason", "out of scope",
                    "--days", "7", "--as", "ops")  # fmt: skip
    assert code == 0 and out.startswith("violation 1 rectifying rectify by ")
    assert run("publish", "1", "--as", "ops")[0] == 0
    code, out = run("violations", "--as", "health")
    assert out.startswith("1\tAGR-T-0001\talice\tbeyond_scenario\trectifying\tclose\tpublished")
    assert run("violations", "--as", "market")[1] == ""
    code, out = run("register")
    assert json.loads(out)["measure"] == "close" and "alice" not in out


def test_quality_tasks_overdue(cli_env, factory):
    code, out = run("raise-task", "--dataset", "clinic_visits", "--description", "Empty values",
                    "--as", "auth")  # fmt: skip
    assert code == 0 and out.startswith("task 1 for city-health-commission due ")
    with transaction(factory) as session:  # raised long ago: now past its due date
        task = session.get_one(QualityTask, 1)
        task.due_on = task.due_on.replace(year=task.due_on.year - 1)
    code, out = run("quality-tasks", "--overdue", "--as", "health")
    assert code == 0 and out.rstrip().endswith("open\tOVERDUE")
    assert run("quality-tasks", "--overdue", "--as", "market")[1] == ""
    code, out = run("handle-task", "1", "--to", "answered", "--answer", "fixing", "--as", "health")
    assert (code, out.strip()) == (0, "task 1 answered")
    assert run("quality-tasks", "--overdue", "--as", "auth")[1] == ""
    code, out = run("handle-task", "1", "--to", "open", "--answer", "x", "--as", "health")
    assert code == 1 and "quality_task-transition" in out and "allowed: closed" in out
