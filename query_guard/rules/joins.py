"""QG-008: joins only as the agreement declares them; no cross joins.

Linking records the provider did not agree to link is use beyond the
scenario (Wuxi Art.15(4)); a cross join is also a resource-exhaustion attack.
Each join needs an ON condition with an equality on a declared pair of
columns (``agreement.joins``), and every equality on an identifier must be
declared.
"""

from __future__ import annotations

import itertools

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.lineage import column_origins, passthrough_origin
from query_guard.rules.shared_scopes import select_scopes

RULE = "QG-008"
REFUSED_KINDS = ("CROSS", "POSITIONAL", "ASOF", "SEMI", "ANTI")


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = condition.unnest()
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _is_declared(eq: exp.EQ, scope: Scope, ctx: GuardContext) -> bool:
    left = column_origins(eq.left, scope)
    right = column_origins(eq.right, scope)
    return bool(left and right) and all(
        ctx.is_declared_join(a, b) for a, b in itertools.product(left, right)
    )


def _is_protected(column: exp.Expression, scope: Scope, ctx: GuardContext) -> bool:
    return isinstance(column, exp.Column) and any(
        ctx.is_protected(*o) for o in column_origins(column, scope)
    )


def _types(column: exp.Column, scope: Scope, ctx: GuardContext) -> set[str]:
    """The catalogue type of a column passed through unchanged; a computed one is unknown."""
    origin = passthrough_origin(column, scope)
    return {ctx.schema[origin[0]][origin[1]]} if origin else {f"unknown {column.sql()}"}


def _problem(join: exp.Join, scope: Scope, ctx: GuardContext) -> str | None:
    kind = (join.kind or "").upper()
    if kind in REFUSED_KINDS or join.args.get("method"):
        return f"{' '.join(filter(None, [join.method, kind]))} JOIN is not allowed"
    on = join.args.get("on")
    if on is None:
        return "a join without an ON condition (a cross join) is not allowed"
    equalities = [
        c
        for c in _conjuncts(on)
        if isinstance(c, exp.EQ)
        and isinstance(c.left, exp.Column)
        and isinstance(c.right, exp.Column)
    ]
    for eq in equalities:
        if len(_types(eq.left, scope, ctx) | _types(eq.right, scope, ctx)) > 1:
            return f"the equality {eq.sql('duckdb')} compares columns of different types"
    declared = [eq for eq in equalities if _is_declared(eq, scope, ctx)]
    if not declared:
        return "the join is not on a declared pair of columns"
    for eq in equalities:
        if eq not in declared and (
            _is_protected(eq.left, scope, ctx) or _is_protected(eq.right, scope, ctx)
        ):
            return f"the equality {eq.sql('duckdb')} joins on an undeclared pair"
    return None


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    declared = ", ".join(f"{a} = {b}" for a, b in ctx.agreement.joins) or "none"
    found = []
    for scope in select_scopes(expr):
        for join in scope.expression.args.get("joins") or []:
            problem = _problem(join, scope, ctx)
            if problem:
                found.append(
                    Finding(
                        RULE,
                        f"{problem}; allowed joins are INNER/LEFT/RIGHT/FULL JOIN ... ON an "
                        f"equality on a declared pair (declared: {declared})",
                        f"{ctx.clause('joins')}; {USE_WITHIN_SCENARIO}",
                    )
                )
    return found
