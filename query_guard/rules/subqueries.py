"""QG-011: subqueries in expressions are uncorrelated and, in aggregate mode, aggregated.

A row-level subquery in a condition (``WHERE x IN (SELECT …)``) turns one
person's record into a yes/no answer about the whole result; a correlated one
is a per-row probe. Aggregated subqueries are protected by the minimum group
size like any other aggregate (agreement disclosure.min_group_size).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import ScopeType

from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import is_aggregating, relation_kind
from query_guard.rules.shared_scopes import scopes

RULE = "QG-011"


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    article = ctx.clause("disclosure.min_group_size")
    found = []
    for scope in scopes(expr):
        if scope.external_columns:
            found.append(
                Finding(
                    RULE,
                    "correlated subqueries are not allowed; join on a "
                    "declared pair or aggregate in a WITH query instead",
                    article,
                )
            )
        elif (
            ctx.mode == "aggregate"
            and relation_kind(scope) == ScopeType.SUBQUERY
            and isinstance(scope.expression, exp.Select)
            and not is_aggregating(scope.expression)
        ):
            found.append(
                Finding(
                    RULE,
                    "a subquery in an expression must aggregate (GROUP BY "
                    "or an aggregate function) in aggregate mode; row-level "
                    "subqueries are allowed only in FROM and WITH",
                    article,
                )
            )
    return found
