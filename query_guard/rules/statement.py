"""QG-001: exactly one read-only query (SELECT, set operations, non-recursive CTEs).

Writes, DDL, COPY, ATTACH, INSTALL/LOAD, SET/PRAGMA, EXPLAIN and every other
statement are outside any agreed scenario (Wuxi Art.15(4)).
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding

RULE = "QG-001"
ALLOWED = "exactly one SELECT query (set operations and WITH clauses allowed)"


def finding(what: str) -> Finding:
    return Finding(RULE, f"{what}; only {ALLOWED} may be run", USE_WITHIN_SCENARIO)


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    if not isinstance(expr, exp.Select | exp.SetOperation):
        return [finding(f"a {expr.key.upper()} statement is not a query")]
    return []
