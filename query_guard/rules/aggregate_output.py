"""QG-009: in aggregate mode the result holds only aggregates and group keys.

The agreement's mode says that only aggregates leave the guard; they are then
protected by aggregate mode's compilation (:mod:`query_guard.anonymise`). A
result block that does not aggregate may only read aggregated blocks (their
anonymised rows), never the datasets' rows.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import groups_by_entity, is_aggregating, is_output
from query_guard.rules.shared_scopes import scopes

RULE = "QG-009"


def _reads_rows(scope: Scope, ctx: GuardContext) -> bool:
    """Whether a block's rows are one entity's each or the datasets' rows: it groups by
    the entity, or reads a dataset or such a block without aggregating."""
    query = scope.expression
    if isinstance(query, exp.SetOperation):
        return any(_reads_rows(branch, ctx) for branch in scope.set_operation_scopes)
    if isinstance(query, exp.Select) and is_aggregating(query):
        return groups_by_entity(scope, ctx)
    sources = list(scope.selected_sources.values())
    return not sources or any(
        isinstance(source, exp.Table) or (isinstance(source, Scope) and _reads_rows(source, ctx))
        for _, source in sources
    )


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    if ctx.mode != "aggregate":
        return []
    for scope in scopes(expr):
        query = scope.expression
        if is_output(scope) and isinstance(query, exp.Select) and _reads_rows(scope, ctx):
            return [
                Finding(
                    RULE,
                    "row-level results are not allowed under an aggregate-mode agreement; "
                    "the result must be aggregates (count, sum, avg, …) with GROUP BY keys",
                    ctx.clause("mode"),
                )
            ]
    return []
