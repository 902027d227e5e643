"""Which group keys and conditions cannot fail on any row, so need no ``TRY(...)``.

The guard wraps row-level expressions in ``TRY`` so that no row's value can make a
query fail (QG-101, error oracles). ``TRY`` costs DuckDB its fast paths and its
zone-map pruning, so aggregate mode leaves it off where the typed input makes a
failure impossible: a date part of a DATE or TIMESTAMP column, a bin of a number
(``floor(x / w) * w`` computes in DOUBLE), a case change of text, and a comparison
of a column with a literal of the column's own kind. Anything else keeps ``TRY``.
"""

from __future__ import annotations

from sqlglot import exp

from query_guard.anonymise.derive import Block
from query_guard.anonymise.positions import DATE_PARTS
from query_guard.anonymise.terms import bare
from query_guard.context import GuardContext

_KINDS = {
    "number": exp.DataType.NUMERIC_TYPES,
    "text": exp.DataType.TEXT_TYPES,
    "date": exp.DataType.TEMPORAL_TYPES,
}


def _kind(column: exp.Column, block: Block, ctx: GuardContext) -> str | None:
    built = ctx.column_type(block.datasets.get(column.table) or "", column.name)
    if built is None:
        return None
    return next((k for k, types in _KINDS.items() if built.this in types), None)


def _literal_kind(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        to = node.args["to"]
        return "date" if to.this in exp.DataType.TEMPORAL_TYPES else None
    return None


def _safe_value(node: exp.Expression, block: Block, ctx: GuardContext) -> str | None:
    """The kind of a key that cannot fail, or None."""
    if isinstance(node, exp.Column):
        return _kind(node, block, ctx)
    if type(node) in DATE_PARTS:
        inner = node.this if isinstance(node.this, exp.Column) else None
        return "number" if inner is not None and _kind(inner, block, ctx) == "date" else None
    if isinstance(node, exp.Lower | exp.Upper):
        return "text" if _safe_value(node.this, block, ctx) == "text" else None
    if isinstance(node, exp.Floor):
        return "number" if _safe_value(node.this, block, ctx) == "number" else None
    if isinstance(node, exp.Div):  # DuckDB's / is DOUBLE division: by a literal, never fails
        width = node.expression
        numeric = _safe_value(node.this, block, ctx) == "number"
        return "number" if numeric and _literal_kind(width) == "number" else None
    if isinstance(node, exp.Mul) and isinstance(node.this, exp.Floor | exp.Div):
        return "number" if _safe_value(node.this, block, ctx) == "number" else None
    return None


def key_sql(key: exp.Expression, block: Block, ctx: GuardContext) -> str:
    """A group key, without ``TRY`` where it cannot fail."""
    plain = bare(key)
    return (
        plain.sql("duckdb", copy=False)
        if _safe_value(plain, block, ctx)
        else key.sql("duckdb", copy=False)
    )


def _cannot_fail(atom: exp.Expression, block: Block, ctx: GuardContext) -> bool:
    """A key compared with a literal of its own kind, or a key tested for NULL."""
    if isinstance(atom, exp.Is):
        safe = _safe_value(atom.this, block, ctx) is not None
    elif isinstance(atom, exp.Between):
        kind = _safe_value(atom.this, block, ctx)
        bounds = {_literal_kind(atom.args["low"]), _literal_kind(atom.args["high"])}
        safe = kind is not None and bounds == {kind}
    elif isinstance(atom, exp.Binary):
        left, right = atom.left, atom.right
        if _literal_kind(left) and not _literal_kind(right):
            left, right = right, left
        kind = _safe_value(left, block, ctx)
        safe = kind is not None and _literal_kind(right) == kind
    else:
        safe = False
    return safe


def holds_sql(atom: exp.Expression, block: Block, ctx: GuardContext) -> str:
    """A condition as a WHERE keeps its rows (NULL counts as not), without ``TRY`` where it
    cannot fail, so that DuckDB can prune by it."""
    sql = atom.sql("duckdb", copy=False)
    return sql if _cannot_fail(atom, block, ctx) else f"TRY({sql})"


def condition_sql(atom: exp.Expression, block: Block, ctx: GuardContext) -> str:
    """Whether a condition holds, as a value: true or false, never NULL."""
    return f"coalesce({holds_sql(atom, block, ctx)}, false)"


def fails_sql(atom: exp.Expression, block: Block, ctx: GuardContext) -> str:
    """The rows a condition leaves out, as a WHERE that DuckDB can still prune by: where it
    cannot fail, its NULL comes only from a NULL in one of its columns, said as such
    (``(c) IS NULL`` would keep DuckDB from using its zone maps)."""
    if not _cannot_fail(atom, block, ctx):
        return f"NOT {condition_sql(atom, block, ctx)}"
    if isinstance(atom, exp.Is):  # IS NULL is never NULL itself
        return f"NOT ({atom.sql('duckdb', copy=False)})"
    columns = dict.fromkeys(c.sql("duckdb", copy=False) for c in atom.find_all(exp.Column))
    return " OR ".join(
        [f"NOT ({atom.sql('duckdb', copy=False)})", *(f"{c} IS NULL" for c in columns)]
    )
