"""QG-101: no error oracles — expressions that could fail on some row return NULL instead.

A query that fails only when a condition on one person holds (a failing
cast, an overflow, a division by zero, a bad conversion in a comparison)
leaks that condition through the error. Every row-level expression is
wrapped in DuckDB's ``TRY(...)`` and every ``CAST`` becomes ``TRY_CAST``, so
no row-level value can raise.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.context import USE_WITHIN_SCENARIO, GuardContext
from query_guard.findings import Finding
from query_guard.policy import QUERY_CLAUSES

RULE = "QG-101"

_LEAVES = (
    exp.Column,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Star,
    exp.Identifier,
    exp.DataType,
    exp.Var,
    exp.Interval,
    exp.Try,
    exp.Tuple,
)
#: Nodes that are not values: only their parts are protected.
_STRUCTURE = (
    *QUERY_CLAUSES,
    exp.Table,
    exp.TableAlias,
    exp.Window,
    exp.WindowSpec,
    exp.AggFunc,
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.Ntile,
)
_NOT_IN_TRY = (exp.AggFunc, exp.Window, exp.Query, exp.Subquery, exp.Star)


def _is_literal_cast(node: exp.Expression) -> bool:
    """``DATE '2024-01-01'`` parses as a cast of a literal; it cannot fail per row."""
    return isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)


def _in_join_condition(node: exp.Expression) -> bool:
    """Whether ``node`` is a conjunct (or the conjunction) of a join's ON condition."""
    parent = node.parent
    while isinstance(parent, exp.And | exp.Paren):
        parent = parent.parent
    return isinstance(parent, exp.Join)


def _is_join_key_equality(node: exp.Expression) -> bool:
    """``a.k = b.k`` in a join condition stays bare so DuckDB plans a hash join; QG-008
    allows such equalities only between columns of the same type, which cannot fail."""
    return (
        isinstance(node, exp.EQ)
        and isinstance(node.left, exp.Column)
        and isinstance(node.right, exp.Column)
        and _in_join_condition(node)
    )


def _is_parenthesised_leaf(node: exp.Expression) -> bool:
    """``(TRY(...))``, a parenthesised protected leaf: cannot fail, and wrapping it again
    would keep the rewritten query from reaching a fixed point."""
    return isinstance(node, exp.Paren) and isinstance(node.unnest(), _LEAVES)


def _protect(node: exp.Expression, made: list[exp.Expression]) -> exp.Expression:
    """``node`` with every row-level value that could fail in TRY, each wrapper added to
    ``made``."""
    if (
        isinstance(node, _LEAVES)
        or _is_literal_cast(node)
        or _is_join_key_equality(node)
        or _is_parenthesised_leaf(node)
    ):
        return node
    conjunction = isinstance(node, exp.And | exp.Paren) and _in_join_condition(node)
    if conjunction or isinstance(node, _STRUCTURE) or node.find(*_NOT_IN_TRY):
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, _protect(value, made))
            elif isinstance(value, list):
                node.set(
                    key, [_protect(v, made) if isinstance(v, exp.Expression) else v for v in value]
                )
        return node
    made.append(exp.Try(this=node))
    return made[-1]


def rewrite(expr: exp.Expression, ctx: GuardContext) -> tuple[exp.Expression, list[Finding]]:
    made: list[exp.Expression] = []

    def try_cast(node: exp.Expression) -> exp.Expression:
        if type(node) is exp.Cast and not _is_literal_cast(node):
            made.append(exp.TryCast(this=node.this, to=node.args["to"]))
            return made[-1]
        return node

    # In place, counting what changed instead of comparing with a copy: the guard never
    # reads the tree it handed over again, and copying it cost a tenth of the decision.
    tree = _protect(expr.transform(try_cast, copy=False), made)
    if not made:
        return tree, []
    return tree, [
        Finding(
            RULE,
            "row-level expressions were wrapped in TRY(...) and casts made "
            "TRY_CAST so that no value can make the query fail; failures yield "
            "NULL",
            USE_WITHIN_SCENARIO,
            action="rewrite",
        )
    ]
