"""QG-006: every column reference resolves to one allowed column of one relation.

After qualification against the agreement's schema, a reference without a
relation is a whole-row reference (``SELECT t FROM x t``) or unresolved, and
is refused; so are references to relations the block does not select from.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.lineage import own_columns
from query_guard.rules.shared_scopes import scopes

RULE = "QG-006"


def finding(ctx: GuardContext, what: str) -> Finding:
    allowed = "; ".join(
        f"{name}: {', '.join(cols)}"
        for name, cols in sorted((n, d.columns) for n, d in ctx.agreement.datasets.items())
    )
    return Finding(
        RULE,
        f"{what}; only the agreement's columns may be referenced, one at a time ({allowed})",
        f"{ctx.clause('datasets.*.columns')}; {USE_WITHIN_SCENARIO}",
    )


def _is_output_alias_reference(column: exp.Column) -> bool:
    """``ORDER BY n`` where ``n`` names an output column of the same block."""
    order = column.parent.parent if isinstance(column.parent, exp.Ordered) else None
    select = order.parent if isinstance(order, exp.Order) else None
    return isinstance(select, exp.Query) and column.name in select.named_selects


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    found = [
        finding(ctx, f"{column.sql('duckdb')} is a whole-row or unresolved reference")
        for column in expr.find_all(exp.Column)
        if not column.table and not _is_output_alias_reference(column)
    ]
    found += [
        finding(ctx, f"{ref.sql('duckdb')} is a whole-row reference")
        for ref in expr.find_all(exp.TableColumn)
    ]
    for scope in scopes(expr):
        for column in own_columns(scope):
            if column.table and column.table not in scope.sources:
                found.append(
                    finding(
                        ctx,
                        f"{column.sql('duckdb')} refers to a relation this "
                        "query block does not select from",
                    )
                )
    return found
