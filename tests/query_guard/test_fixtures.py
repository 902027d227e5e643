"""Every SQL fixture case: the guard's decision, then a real run of what it allows."""

from __future__ import annotations

import json

import pytest

from query_guard.engine import run_query
from query_guard.guard import check_query
from tests.query_guard.cases import Case, load_cases
from tests.query_guard.leaks import assert_no_leak


@pytest.mark.parametrize("case", load_cases())
def test_case(case: Case, aggregate, record) -> None:
    built = {"aggregate": aggregate, "record": record}[case.mode]
    decision = check_query(case.sql, built.ctx)
    rules = [r.rule for r in decision.reasons]
    assert decision.action == case.action, (decision.action, rules, decision.sql)
    if case.action == "block":
        assert decision.sql is None
        assert decision.reasons and all(r.message and r.article for r in decision.reasons)
        if case.rule:
            assert case.rule in rules, rules
        return
    result = run_query(built.conn, decision.sql, timeout_s=30)
    assert result.num_rows <= built.ctx.agreement.disclosure.max_result_rows
    assert_no_leak(result, built.raw_ids, case.mode)


def test_decision_serialises_to_the_contract(aggregate) -> None:
    decision = check_query("SELECT patient_id FROM visits", aggregate.ctx)
    data = json.loads(json.dumps(decision.to_dict()))
    assert set(data) == {"action", "sql", "reasons"}
    assert data["action"] == "block" and data["sql"] is None
    assert {"rule", "message"} <= set(data["reasons"][0])


def test_messages_cite_the_agreement_clause(aggregate) -> None:
    decision = check_query("SELECT district, count(*) FROM visits GROUP BY 1", aggregate.ctx)
    cited = {r.rule: r.article for r in decision.reasons}
    assert cited["QG-022"] == "agreement AGR-T-1 disclosure"
    assert cited["QG-103"] == "agreement AGR-T-1 disclosure.max_result_rows"


def test_small_groups_are_suppressed(aggregate) -> None:
    decision = check_query(
        "SELECT district, count(*) AS n FROM visits GROUP BY district", aggregate.ctx
    )
    districts = run_query(aggregate.conn, decision.sql, 30).column("district").to_pylist()
    assert "Tiny" not in districts and len(districts) == 4


def test_row_filter_is_applied_in_the_data(record) -> None:
    decision = check_query("SELECT min(visit_date) AS first FROM visits", record.ctx)
    first = run_query(record.conn, decision.sql, 30).column("first")[0].as_py()
    assert first.isoformat() >= "2024-01-01"


def test_error_oracle_returns_instead_of_failing(aggregate, record) -> None:
    """Refused outright in aggregate mode (not a condition of its allowlist); made
    unable to fail in record mode."""
    sql = "SELECT count(*) AS n FROM visits WHERE 1 // CAST(cost > 899 AS INTEGER) = 1"
    assert [r.rule for r in check_query(sql, aggregate.ctx).reasons] == ["QG-020"]
    decision = check_query(sql, record.ctx)
    assert run_query(record.conn, decision.sql, 30).num_rows <= 1


def test_suspended_dataset_is_refused_citing_art22(aggregate) -> None:
    from query_guard.guard import GuardContext

    ctx = GuardContext(
        aggregate.ctx.agreement, aggregate.ctx.catalog, suspended=frozenset({"people"})
    )
    decision = check_query("SELECT count(*) FROM people", ctx)
    assert decision.action == "block"
    assert any(r.rule == "QG-005" and r.article == "Shanghai Art.22" for r in decision.reasons)
    assert check_query("SELECT count(*) FROM visits", ctx).action == "rewrite"


def test_rewritten_sql_checks_out_unchanged(record) -> None:
    sql = (
        "WITH t AS (SELECT district, cost FROM visits WHERE cost > 100) "
        "SELECT district, avg(cost) FROM t GROUP BY district"
    )
    first = check_query(sql, record.ctx)
    again = check_query(first.sql, record.ctx)
    assert again.sql == first.sql and again.action == "allow"


def test_anonymised_sql_cannot_be_submitted(aggregate) -> None:
    """What aggregate mode runs names the private tables and the anonymising functions:
    submitted as a query, it is refused, so nobody can call them with values of their own."""
    first = check_query("SELECT district, count(*) FROM visits GROUP BY 1", aggregate.ctx)
    assert "qg_private" in first.sql and "__qg_adjust" in first.sql.lower()
    assert check_query(first.sql, aggregate.ctx).action == "block"


def test_star_never_reaches_the_contribution_rank(record) -> None:
    """``SELECT *`` is expanded from the guard's schema, which does not hold the rank."""
    for sql in (
        "SELECT * FROM visits",
        "SELECT v.* FROM visits v",
        "WITH t AS (SELECT * FROM visits) SELECT * FROM t",
    ):
        decision = check_query(sql, record.ctx)
        result = run_query(record.conn, decision.sql, timeout_s=30)
        assert result.column_names == ["patient_id", "visit_date", "district", "cost"], sql
