"""QG-007: identifier (and hidden) columns are never shown, filtered on or ordered by.

Identifiers are pseudonymised in the per-agreement database, but their values
still single people out (Rizhao Art.29; Putuo Art.32). A reference to an
identifier may appear only
- inside ``COUNT(DISTINCT col)``;
- as a side of a join equality (QG-008 checks it is declared);
- as a bare GROUP BY key or a passed-through column of a CTE or derived
  table, i.e. a per-entity pre-aggregation that is aggregated again;
- in record mode, as a bare output column (a pseudonym) of the result.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.context import DESENSITISATION, GuardContext
from query_guard.findings import Finding
from query_guard.lineage import (
    column_origins,
    in_count_distinct,
    is_inner_relation,
    is_output,
    own_columns,
)
from query_guard.rules.shared_scopes import scopes

RULE = "QG-007"
ALLOWED = (
    "inside COUNT(DISTINCT …), as a declared join key, or as the GROUP BY key of a WITH "
    "query that pre-aggregates per entity and is itself aggregated again"
)


def _in_join_equality(column: exp.Column) -> bool:
    eq = column.parent
    if not isinstance(eq, exp.EQ) or not all(isinstance(s, exp.Column) for s in eq.args.values()):
        return False
    node = eq.parent
    while isinstance(node, exp.And | exp.Paren):
        node = node.parent
    return isinstance(node, exp.Join) and node.args.get("on") is not None


def _is_bare_projection(column: exp.Column, scope: Scope) -> bool:
    node = column.parent if isinstance(column.parent, exp.Alias) else column
    return node.parent is scope.expression and node.arg_key == "expressions"


def _is_bare_group_key(column: exp.Column) -> bool:
    return isinstance(column.parent, exp.Group)


def _allowed_use(column: exp.Column, scope: Scope, ctx: GuardContext, hidden: bool) -> bool:
    if in_count_distinct(column) or _in_join_equality(column):
        return True
    passthrough = _is_bare_projection(column, scope) or _is_bare_group_key(column)
    if passthrough and is_inner_relation(scope):
        return True
    return passthrough and not hidden and ctx.mode == "record" and is_output(scope)


def _protected_projections(scope: Scope, ctx: GuardContext) -> dict[int, str]:
    """Position -> output name of each projection that carries an identifier."""
    out = {}
    for position, projection in enumerate(scope.expression.expressions):
        for column in projection.find_all(exp.Column):
            if any(ctx.is_protected(*o) for o in column_origins(column, scope)):
                out[position] = projection.alias_or_name
    return out


def _orders_by_projection(scope: Scope, ctx: GuardContext) -> bool:
    """ORDER BY ALL, a position or an output alias that stands for an identifier.

    Such keys name the identifier without being a column reference to it, so the
    column check above cannot see them; ordering by a pseudonym lets a researcher
    page through the data in a stable order (bulk extraction, R12).
    """
    order = scope.expression.args.get("order")
    if order is None or not isinstance(scope.expression, exp.Select):
        return False
    protected = _protected_projections(scope, ctx)
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Var) and key.name.upper() == "ALL" and protected:
            return True
        if isinstance(key, exp.Literal) and not key.is_string and int(key.name) - 1 in protected:
            return True
        if isinstance(key, exp.Column) and not key.table and key.name in protected.values():
            return True
    return False


def check(expr: exp.Expression, ctx: GuardContext) -> list[Finding]:
    found = []
    for scope in scopes(expr):
        if _orders_by_projection(scope, ctx):
            found.append(
                Finding(
                    RULE,
                    "the result may not be ordered by an identifier column "
                    "(by name, alias, position or ORDER BY ALL); order by other "
                    "columns instead",
                    DESENSITISATION,
                )
            )
        for column in own_columns(scope):
            origins = column_origins(column, scope)
            protected = sorted(o for o in origins if ctx.is_protected(*o))
            if not protected:
                continue
            hidden = any(ctx.is_hidden(*o) for o in protected)
            if _allowed_use(column, scope, ctx, hidden):
                continue
            names = ", ".join(f"{d}.{c}" for d, c in protected)
            if hidden:
                message = (
                    f"{names} is not among the agreement's columns; it may be used only "
                    "inside COUNT(DISTINCT …)"
                )
            else:
                message = (
                    f"{names} is an identifier column (pseudonymised); it may not be "
                    f"shown, filtered on, ordered by or transformed here; it may be used "
                    f"only {ALLOWED}"
                    + (
                        "; in record mode it may also be output as a bare column"
                        if ctx.mode == "record"
                        else ""
                    )
                )
            found.append(Finding(RULE, message, DESENSITISATION))
    return found
