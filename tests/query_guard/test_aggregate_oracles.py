"""Error oracles over aggregate values (QG-104): a query must not fail differently
depending on whether a condition holds for a small group or for a large one.

Each attack below makes plain DuckDB fail exactly when a group has ``{n}`` rows.
Before aggregate mode compiled its blocks (QG-022), the k-check sat in the
same HAVING and DuckDB could evaluate either side first, so a small group
could fail the query; now HAVING reads only anonymised values of kept groups,
and QG-104 still keeps arithmetic over them from failing.
"""

from __future__ import annotations

import duckdb
import pytest

from query_guard.engine import run_query
from query_guard.guard import check_query
from tests.query_guard.data import SMALL_DISTRICT, SMALL_GROUP

ATTACKS = [
    # integer overflow when the group has n rows
    "SELECT district, count(*) AS c FROM visits GROUP BY district "
    "HAVING CASE WHEN count(*) = {n} THEN count(*) * 9223372036854775807 ELSE 0 END >= 0",
    # the author's example, made conditional on the group size
    "SELECT district, count(*) AS c FROM visits GROUP BY district "
    "HAVING CASE WHEN count(*) = {n} THEN count(*)::INT * 2147483647 * 2147483647 ELSE 0 END >= 0",
    # HUGEINT sum overflow when the group has n rows or more
    "SELECT district, count(*) AS c FROM visits GROUP BY district HAVING "
    "sum(170141183460469231731687303715884105727 // ({n} - 1)) >= 0",
    # overflow in the SELECT list and in a window over the groups
    "SELECT district, CASE WHEN count(*) = {n} THEN count(*) * 9223372036854775807 END AS x, "
    "sum(count(*) * 4611686018427387904) OVER () AS w FROM visits GROUP BY district",
]


def _group_sizes(aggregate) -> tuple[int, int]:
    """Visits in the small district, and in one large district."""
    raw = aggregate.conn.sql(
        "SELECT district, count(*) FROM visits GROUP BY district ORDER BY 2 DESC"
    ).fetchall()
    sizes = dict(raw)
    assert sizes[SMALL_DISTRICT] == SMALL_GROUP
    return sizes[SMALL_DISTRICT], raw[0][1]


@pytest.mark.parametrize("attack", ATTACKS)
def test_aggregate_arithmetic_fails_alike_for_small_and_large_groups(attack, aggregate) -> None:
    results = []
    for n in _group_sizes(aggregate):
        sql = attack.format(n=n)
        with pytest.raises(duckdb.Error):  # the oracle is real on the unguarded engine
            aggregate.conn.sql(sql).fetchall()
        decision = check_query(sql, aggregate.ctx)
        rules = [r.rule for r in decision.reasons]
        if decision.action == "block":  # an aggregate argument outside aggregate mode's allowlist
            assert rules == ["QG-020"]
            results.append(rules)
            continue
        assert "QG-104" in rules
        result = run_query(aggregate.conn, decision.sql, timeout_s=30)
        assert SMALL_DISTRICT not in result.column("district").to_pylist()
        results.append(sorted(result.column("district").to_pylist()))
    assert results[0] == results[1]
