"""What may stand in each position of an aggregate-mode query, term by term.

Group keys and the columns of conditions are *buckets* (one unprotected
column, coarsened at most), conditions keep whole classes of rows (a value, a
round range, missing), and an aggregate's argument is linear in one column.
Each check raises :class:`Refused` with the position's reason from
:data:`.positions.POSITIONS`. :func:`canonical` is the text a term seeds its
noise layer with: ``dataset.column`` names, no aliases or safety wrappers,
normalised numbers, literals on the right, so rephrasing never draws fresh noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.anonymise.positions import POSITIONS
from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import column_origins

RULE = "QG-020"
SNAP_RULE = "QG-021"


class Refused(Exception):
    """A node in a position that does not allow it; ``finding`` says which and why."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def shown(node: exp.Expression) -> str:
    """An expression for a refusal message with its literals as ``?``: refusals are
    recorded, and a literal compared with an identifier must not reach the record."""
    masked = node.copy()
    for literal in list(masked.find_all(exp.Literal)):
        literal.replace(exp.Placeholder())
    return masked.sql("duckdb", copy=False)  # a copy of its own


def refuse(ctx: GuardContext, position: str, what: str) -> Refused:
    p = POSITIONS[position]
    return Refused(
        Finding(
            RULE,
            f"{what} is not allowed as {position} in aggregate mode: {p.why}; {p.instead}",
            ctx.clause("mode"),
        )
    )


def _strip(n: exp.Expression) -> exp.Expression:
    if isinstance(n, exp.Try | exp.Paren):
        return _strip(n.this)
    if isinstance(n, exp.TryCast):
        return exp.Cast(this=n.this, to=n.args["to"])
    return n


def bare(node: exp.Expression) -> exp.Expression:
    """``node`` without the guard's own safety wrappers (TRY, TRY_CAST) and parentheses: a
    stripped copy, or ``node`` itself where it has none (read it, never change it: copying
    every term it was asked about cost the decision a tenth of its time)."""
    if node.find(exp.Try, exp.Paren, exp.TryCast) is None:
        return node
    return node.transform(_strip)  # on a copy


def canonical(
    node: exp.Expression,
    datasets: Mapping[str, str],
    defined: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """The seed text of an expression: dataset.column names, no wrappers, literals right.

    ``defined`` gives the columns of a per-entity WITH query, by (alias, name), as the
    seed text of the expression that defines them: what the researcher names them must
    not give a value fresh noise either.
    """

    def dataset_column(n: exp.Expression) -> exp.Expression:
        if not isinstance(n, exp.Column):
            return n
        text = (defined or {}).get((n.table, n.name))
        if text is not None:
            source = exp.Literal.string(datasets.get(n.table, n.table))
            return exp.Anonymous(this="defined", expressions=[source, exp.Literal.string(text)])
        return exp.column(n.name, table=datasets.get(n.table, n.table))

    if isinstance(node, exp.Column):  # most terms: the text without copying the tree
        return dataset_column(node).sql("duckdb", copy=False)
    # transform, not replace: a bare column is the root, which replace() cannot swap, and
    # it kept its alias (a table alias must not give a cell fresh noise)
    tree = node.copy().transform(_strip, copy=False).transform(dataset_column, copy=False)
    for literal in tree.find_all(exp.Literal):
        if not literal.is_string:  # 37, 37.0 and 3.7e1 are one condition
            literal.replace(exp.Literal.number(str(Decimal(literal.name).normalize())))
    if isinstance(tree, exp.Binary) and _is_literal(tree.left) and not _is_literal(tree.right):
        flipped = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}
        cls = flipped.get(type(tree), type(tree))
        tree = cls(this=tree.right, expression=tree.left)
    return tree.sql("duckdb", copy=False)  # a copy of its own


def _is_literal(node: exp.Expression) -> bool:
    node = bare(node)
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Cast):
        node = node.this
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null)


def number(node: exp.Expression) -> float | None:
    node = bare(node)
    sign = 1.0
    if isinstance(node, exp.Neg):
        sign, node = -1.0, node.this
    if isinstance(node, exp.Literal) and not node.is_string:
        return sign * float(node.name)
    return None


def _is_round(value: str) -> bool:
    """One significant digit: 0, 3, 50, 0.2, 2000 — Diffix-style coarse range bounds."""
    try:
        digits = [d for d in Decimal(value.lstrip("-")).normalize().as_tuple().digits if d]
    except InvalidOperation:
        return False
    return len(digits) <= 1


def _is_first_of_month(node: exp.Expression) -> bool:
    """``DATE '2024-03-01'`` or a timestamp at its midnight: a coarse date bound."""
    if not (isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal)):
        return False
    text = node.this.name
    temporal = node.args["to"].this in exp.DataType.TEMPORAL_TYPES
    return temporal and text[8:10] in ("01", "") and text[10:].strip(" T0:.") == ""


def _snapped(node: exp.Expression, ctx: GuardContext) -> None:
    node = bare(node)
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Literal) and not node.is_string and _is_round(node.name):
        return
    if _is_first_of_month(node):
        return
    raise Refused(
        Finding(
            SNAP_RULE,
            f"the range bound {node.sql('duckdb')} is not round: range bounds must have one "
            "significant digit (e.g. 30, 500, 0.2) or be the first day of a month, so that "
            "ranges cannot be shifted to include or leave out one person",
            ctx.clause("mode"),
        )
    )


def protected(column: exp.Column, scope: Scope, ctx: GuardContext) -> bool:
    return any(ctx.is_protected(d, c) for d, c in column_origins(column, scope))


def check_bucket(node: exp.Expression, scope: Scope, ctx: GuardContext) -> None:
    """A group key or a condition's left side: one unprotected column, coarsened at most."""
    node = bare(node)
    allowed = POSITIONS["bucket"].allowed
    columns = list(node.find_all(exp.Column))
    for n in node.walk():
        if type(n) not in allowed:
            raise refuse(ctx, "bucket", shown(n))
    if len(columns) != 1:
        raise refuse(ctx, "bucket", f"{shown(node)} (not exactly one column)")
    if protected(columns[0], scope, ctx):
        raise refuse(ctx, "bucket", f"the identifier {columns[0].sql('duckdb')}")
    for n in node.find_all(exp.Div, exp.Mul):
        width = number(n.expression)
        if width is None or not _is_round(repr(abs(width))):
            raise Refused(
                Finding(
                    SNAP_RULE,
                    f"the bin width in {n.sql('duckdb')} must be a round literal with one "
                    "significant digit (e.g. floor(age / 10) * 10)",
                    ctx.clause("mode"),
                )
            )


def conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = bare(condition)
    if isinstance(condition, exp.And):
        return conjuncts(condition.left) + conjuncts(condition.right)
    return [condition]


def check_condition(atom: exp.Expression, scope: Scope, ctx: GuardContext) -> None:
    """``column = value``, a range with round bounds, or ``column IS NULL``.

    Only conditions that keep a class of rows: with IN lists, negations, ``<>`` or OR a
    pair of queries can differ by exactly one person (``age IN (33..37)`` against
    ``age IN (33..36)``), and averaging many such pairs removes any noise.
    """
    if type(atom) not in POSITIONS["condition"].allowed or atom.find(exp.Subquery, exp.Select):
        raise refuse(ctx, "condition", shown(atom))
    if isinstance(atom, exp.Is):
        if not isinstance(atom.expression, exp.Null):
            raise refuse(ctx, "condition", shown(atom))
        check_bucket(atom.this, scope, ctx)
        return
    if isinstance(atom, exp.Between):
        check_bucket(atom.this, scope, ctx)
        for bound in (atom.args["low"], atom.args["high"]):
            if not _is_literal(bound):
                raise refuse(ctx, "condition", shown(atom))
            _snapped(bound, ctx)
        return
    left, right = atom.left, atom.right
    if _is_literal(left):
        left, right = right, left
    if not _is_literal(right):
        raise refuse(ctx, "condition", shown(atom))
    check_bucket(left, scope, ctx)
    if not isinstance(atom, exp.EQ):
        _snapped(right, ctx)


def linear(node: exp.Expression, ctx: GuardContext) -> tuple[float, float, exp.Column | None]:
    """``node`` as a·column + b, or refused."""
    node = bare(node)
    if isinstance(node, exp.Cast) and node.args["to"].this in exp.DataType.NUMERIC_TYPES:
        return linear(node.this, ctx)
    if isinstance(node, exp.Column):
        return 1.0, 0.0, node
    value = number(node)
    if value is not None:
        return 0.0, value, None
    if type(node) not in POSITIONS["aggregate argument"].allowed:
        raise refuse(ctx, "aggregate argument", shown(node))
    if isinstance(node, exp.Neg):
        a, b, c = linear(node.this, ctx)
        return -a, -b, c
    la, lb, lc = linear(node.left, ctx)
    ra, rb, rc = linear(node.right, ctx)
    if isinstance(node, exp.Add | exp.Sub):
        sign = 1.0 if isinstance(node, exp.Add) else -1.0
        if lc is not None and rc is not None and lc.sql() != rc.sql():
            raise refuse(ctx, "aggregate argument", f"{shown(node)} (two columns)")
        return la + sign * ra, lb + sign * rb, lc or rc
    if isinstance(node, exp.Mul) and (lc is None or rc is None):
        if lc is None:
            return ra * lb, rb * lb, rc
        return la * rb, lb * rb, lc
    if isinstance(node, exp.Div) and rc is None and rb != 0:
        return la / rb, lb / rb, lc
    raise refuse(ctx, "aggregate argument", shown(node))
