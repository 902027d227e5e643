"""The command line keeps the platform's promises (issue 12, item 8).

``sandbox export dp`` releases through the query service's own release function:
each release and refusal is an event in the audit record of the database at
``--db``, and a platform's database must hold the agreement. ``sandbox guard run``
exits 0, 2 or 3 as ARCHITECTURE says, also when an allowed query fails while
running. Every test ends with the platform's audit chain verified (``factory``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from export_review.ledger import PrivacyBudget, PrivacyCharge
from sandbox.accounts.models import User
from sandbox.audit.models import AuditEvent
from sandbox.audit.verify import verify_chain
from sandbox.cli.main import app
from sandbox.contracts import dump_agreement
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.settings import Settings
from tests.control_plane.helpers import agreement, publish_all

COUNTS = "SELECT district, count(*) AS n FROM clinic_visits GROUP BY district"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _file(tmp_path: Path, name: str = "agreement.yaml", **overrides: Any) -> Path:
    path = tmp_path / name
    path.write_text(dump_agreement(agreement(**overrides)), encoding="utf-8")
    return path


def _dp(catalog: Path, terms: Path, db: str, sql: str = COUNTS, epsilon: str = "0.5") -> Result:
    return runner.invoke(
        app,
        ["export", "dp", "--catalog", str(catalog), "--agreement", str(terms), "--db", db,
         "--sql", sql, "--epsilon", epsilon],
    )  # fmt: skip


def _state(factory: sessionmaker[Session]) -> tuple[list[dict[str, Any]], int, int]:
    """The ``dp.release`` events (actor and details), the charges and the budgets."""
    with transaction(factory) as session:
        events = [
            {"actor": e.actor, "object": e.object, **json.loads(e.details)}
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "dp.release").order_by(AuditEvent.seq)
            )
        ]
        charges = session.scalar(select(func.count()).select_from(PrivacyCharge)) or 0
        budgets = session.scalar(select(func.count()).select_from(PrivacyBudget)) or 0
    return events, charges, budgets


@pytest.fixture
def platform(
    cli_env: Settings,
    factory: sessionmaker[Session],
    users: dict[str, User],
    catalog_dir: Path,
    tmp_path: Path,
) -> Path:
    """A platform whose catalogue is published and which holds AGR-T-0001 (imported as
    the provider on the command line); the agreement's file."""
    publish_all(factory, users, cli_env, catalog_dir)
    terms = _file(tmp_path)
    imported = runner.invoke(app, ["agreement", "import", str(terms), "--as", "health"])
    assert imported.exit_code == 0, imported.output
    return terms


def test_export_dp_records_each_release_and_refusal_in_the_platform_record(
    cli_env: Settings, factory: sessionmaker[Session], catalog_dir: Path, platform: Path
) -> None:
    released = _dp(catalog_dir, platform, cli_env.db_url)
    assert released.exit_code == 0, released.output
    out = json.loads(released.stdout)
    assert out["epsilon_spent"] == 0.5 and out["epsilon_remaining"] == pytest.approx(0.5)
    refused = _dp(catalog_dir, platform, cli_env.db_url, sql="SELECT patient_id FROM clinic_visits")
    assert refused.exit_code == 4 and json.loads(refused.stderr)["rule"]

    events, charges, budgets = _state(factory)
    assert [e["actor"] for e in events] == ["cli", "cli"]
    assert {e["object"] for e in events} == {"agreement:AGR-T-0001"}
    assert events[0]["epsilon_spent"] == 0.5 and "refused" not in events[0]
    assert events[1]["refused"]["rule"] == json.loads(refused.stderr)["rule"]
    assert (charges, budgets) == (1, 1)


def test_export_dp_refuses_an_agreement_the_platform_does_not_hold(
    cli_env: Settings,
    factory: sessionmaker[Session],
    catalog_dir: Path,
    platform: Path,
    tmp_path: Path,
) -> None:
    unknown = _dp(catalog_dir, _file(tmp_path, "other.yaml", id="AGR-NOT-HELD"), cli_env.db_url)
    assert unknown.exit_code == 2, unknown.output
    refusal = json.loads(unknown.stderr)
    assert refusal["rule"] == "agreement-unknown" and "AGR-NOT-HELD" in refusal["error"]

    altered = _dp(catalog_dir, _file(tmp_path, "altered.yaml", purpose="Another purpose."),
                  cli_env.db_url)  # fmt: skip
    assert altered.exit_code == 2
    assert json.loads(altered.stderr)["rule"] == "agreement-authoritative-copy"

    suspended = runner.invoke(
        app,
        ["agreement", "suspend", "AGR-T-0001", "--reason", "audit", "--days", "5", "--as", "ops"],
    )
    assert suspended.exit_code == 0, suspended.output
    inactive = _dp(catalog_dir, platform, cli_env.db_url)
    assert inactive.exit_code == 4
    assert json.loads(inactive.stderr)["rule"] == "agreement-not-active"
    assert _state(factory) == ([], 0, 0)  # no budget registered, nothing charged or recorded


def test_export_dp_on_an_empty_database_keeps_its_own_ledger_and_record(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """ARCHITECTURE: an empty database gets the schema and the budget from the file."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    terms = _file(tmp_path)
    assert _dp(catalog_dir, terms, url).exit_code == 0
    assert _dp(catalog_dir, terms, url, epsilon="0.75").exit_code == 4  # 0.5 left
    engine = make_engine(url)
    try:
        factory = make_sessionmaker(engine)
        events, charges, budgets = _state(factory)
        with transaction(factory) as session:
            assert verify_chain(session).ok
    finally:
        engine.dispose()
    assert [e.get("refused", {}).get("rule") for e in events] == [None, "dp-budget-exhausted"]
    assert (charges, budgets) == (1, 1)


# -- sandbox guard run -----------------------------------------------------------------


def _guard_run(catalog: Path, terms: Path, sql: str) -> list[str]:
    return ["guard", "run", "--catalog", str(catalog), "--agreement", str(terms), "--sql", sql]


def test_guard_run_exits_0_2_or_3_as_the_contract_says(catalog_dir: Path, tmp_path: Path) -> None:
    record = _file(tmp_path, mode="record")
    ran = runner.invoke(app, _guard_run(catalog_dir, record, "SELECT district, cost FROM "
                                        "clinic_visits LIMIT 3"))  # fmt: skip
    assert ran.exit_code == 0 and ran.stdout.splitlines()[0] == "district,cost"

    blocked = runner.invoke(app, _guard_run(catalog_dir, record, "SELECT patient_id FROM x"))
    assert blocked.exit_code == 3 and blocked.stdout == ""
    assert json.loads(blocked.stderr)["action"] == "block"

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    config = runner.invoke(app, _guard_run(catalog_dir, bad, "SELECT 1"))
    assert config.exit_code == 2 and config.stderr.startswith("error:")


def test_guard_run_an_allowed_query_that_fails_while_running_exits_3(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """The guard allows ``district + 1``; the engine cannot bind it. Not answered: exit 3,
    the decision object on stderr with the engine's rule and one fixed message."""
    record = _file(tmp_path, mode="record")
    sql = "SELECT district + 1 AS x FROM clinic_visits LIMIT 3"
    checked = runner.invoke(app, ["guard", "check", *_guard_run(catalog_dir, record, sql)[2:]])
    assert json.loads(checked.stdout)["action"] in ("allow", "rewrite")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "sandbox"), *_guard_run(catalog_dir, record, sql)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    decision = json.loads(proc.stderr)
    assert decision["action"] == "block" and decision["sql"] is None
    assert [r["rule"] for r in decision["reasons"]] == ["QG-014"]
    assert "Binder" not in proc.stderr  # the engine's own words never reach the caller
