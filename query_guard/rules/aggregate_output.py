"""QG-009: in aggregate mode the result holds only aggregates and group keys.

The agreement's mode says that only aggregates leave the guard; group sizes
are then protected by aggregate mode's compilation (:mod:`query_guard.anonymise`).
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import is_aggregating, is_output, scopes

RULE = "QG-009"


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    if ctx.mode != "aggregate":
        return []
    for scope in scopes(expr):
        query = scope.expression
        if is_output(scope) and isinstance(query, exp.Select) and not is_aggregating(query):
            return [
                Finding(
                    RULE,
                    "row-level results are not allowed under an aggregate-mode agreement; "
                    "the result must be aggregates (count, sum, avg, …) with GROUP BY keys",
                    ctx.clause("mode"),
                )
            ]
    return []
