"""A DP release end to end: contract shape, nothing charged for refusals, charge first;
and the ``sandbox export dp`` command on the provisioning build."""

from __future__ import annotations

import json

import duckdb
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from export_review import ledger
from export_review.dp_export import release_dp
from sandbox.cli.export import export_app
from sandbox.db.base import Base, make_engine, make_sessionmaker, transaction
from sandbox.errors import PolicyViolation

COUNT_SQL = "SELECT district, COUNT(*) AS n FROM outpatient_visits GROUP BY district"


@pytest.fixture
def sessions(world, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(
        engine, tables=[ledger.PrivacyBudget.__table__, ledger.PrivacyCharge.__table__]
    )
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        ledger.ensure_budget(session, world.agreement)
    return factory


def _release(world, sessions, sql, epsilon, conn=None):
    with conn or world.connect() as c:
        return release_dp(
            sessions=sessions,
            conn=c,
            agreement=world.agreement,
            catalog=world.catalog,
            sql=sql,
            epsilon=epsilon,
        )


def _charges(sessions) -> int:
    with transaction(sessions) as session:
        return session.scalar(select(func.count()).select_from(ledger.PrivacyCharge))


def test_release_has_the_contract_shape(world, sessions):
    out = _release(world, sessions, COUNT_SQL, 1.0)
    assert set(out) == {
        "columns",
        "rows",
        "epsilon_spent",
        "epsilon_remaining",
        "delta_spent",
        "mechanisms",
    }
    assert out["columns"] == ["district", "n"] and len(out["rows"]) == 6
    assert (out["epsilon_spent"], out["epsilon_remaining"], out["delta_spent"]) == (1.0, 2.0, 0.0)
    assert out["mechanisms"] == ["discrete laplace (count)"]


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (
            "SELECT district, COUNT(*) FROM outpatient_visits WHERE diagnosis = 'J06' "
            "GROUP BY district",
            "QG-006",
        ),  # the guard refuses a column outside the agreement
        ("SELECT district, COUNT(age) FROM outpatient_visits GROUP BY district", "dp-unsupported"),
    ],
)
def test_refusals_from_the_text_charge_nothing(world, sessions, sql, rule):
    with pytest.raises(PolicyViolation) as info:
        _release(world, sessions, sql, 1.0)
    assert info.value.rule == rule
    assert _charges(sessions) == 0


def test_exhausted_budget_is_refused(world, sessions):
    _release(world, sessions, COUNT_SQL, 2.5)
    with pytest.raises(PolicyViolation) as info:
        _release(world, sessions, COUNT_SQL, 1.0)
    assert info.value.rule == "dp-budget-exhausted"
    assert _charges(sessions) == 1


def test_the_charge_is_committed_before_the_data_is_read(world, sessions):
    with pytest.raises(duckdb.Error):  # the data cannot be read: the charge stays
        _release(world, sessions, COUNT_SQL, 1.0, conn=duckdb.connect())
    assert _charges(sessions) == 1


def _cli(world, tmp_path, sql, epsilon="1.0"):
    return CliRunner().invoke(
        export_app,
        [
            "dp",
            "--catalog",
            str(world.catalog_dir),
            "--agreement",
            str(world.agreement_path),
            "--db",
            f"sqlite:///{tmp_path / 'cli.db'}",
            "--sql",
            sql,
            "--epsilon",
            epsilon,
        ],
    )


def test_cli_releases_one_json_object(world, tmp_path):
    result = _cli(world, tmp_path, COUNT_SQL)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["epsilon_remaining"] == 2.0 and out["rows"][0][0] == "梁溪区"
    result = _cli(
        world, tmp_path, "SELECT hospital, COUNT(*) AS n FROM outpatient_visits GROUP BY hospital"
    )
    out = json.loads(result.stdout)
    assert out["epsilon_remaining"] == 1.0 and 0 < out["delta_spent"] <= 1e-7


def test_cli_refusals_exit_4_and_usage_errors_exit_2(world, tmp_path):
    result = _cli(world, tmp_path, "SELECT * FROM outpatient_visits")
    assert result.exit_code == 4
    assert json.loads(result.stderr)["rule"]
    result = _cli(world, tmp_path, COUNT_SQL, epsilon="5")
    assert result.exit_code == 4 and json.loads(result.stderr)["rule"] == "dp-budget-exhausted"
    result = _cli(world, tmp_path, COUNT_SQL, epsilon="0.1234567")
    assert result.exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    result = CliRunner().invoke(
        export_app,
        [
            "dp",
            "--catalog",
            str(world.catalog_dir),
            "--agreement",
            str(bad),
            "--sql",
            COUNT_SQL,
            "--epsilon",
            "1",
            "--db",
            f"sqlite:///{tmp_path / 'cli.db'}",
        ],
    )
    assert result.exit_code == 2
