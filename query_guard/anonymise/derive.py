"""Every aggregate of a block as an expression over anonymised *base* aggregates.

A base is summed per entity, then anonymised per bucket (:mod:`.emit`). An
aggregate of a linear argument is a combination of bases over the one plain
column (``sum(2*x+1)`` is ``2·sum(x) + count(x)``, so ``sum(x+0)`` and
``2*sum(x/2)`` are ``sum(x)`` and carry its noise); averages and spreads are
ratios of bases, so a value is NULL (suppressed) when any base it reads is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.anonymise.positions import POSITIONS
from query_guard.anonymise.terms import bare, canonical, linear, number, protected, refuse, shown
from query_guard.context import GuardContext

ROWS, VALUES, SUM, SQUARES, ENTITIES = "rows", "values", "sum", "squares", "entities"
QUANTILE = "quantile"
#: The column a per-entity block's compiled form names its entity by.
PER_ENTITY = "__qg_e"


@dataclass(frozen=True)
class Base:
    """One base aggregate: summed per entity, then anonymised per bucket."""

    kind: str
    column: exp.Column | None
    canonical: str
    owner: int = 0  # for ENTITIES: the entity kind counted
    fraction: float = 0.5  # for QUANTILE: which quantile


@dataclass
class Block:
    select: exp.Select
    datasets: dict[str, str]  # alias -> dataset
    kinds: list[list[tuple[str, str]]]  # entity kinds: (alias, stored entity column)
    keys: list[exp.Expression]
    key_texts: list[str]
    atoms: list[exp.Expression]  # the WHERE's conditions, one by one, without wrappers
    conditions: list[str]  # their canonical forms, in the same order
    keyed_by: tuple[str, ...] = ()  # the datasets whose noise keys seed its values
    inner: dict[str, tuple[exp.Select, str]] = field(default_factory=dict)  # per-entity
    # each per-entity column's defining expression, as seed text (terms.canonical)
    defined: dict[tuple[str, str], str] = field(default_factory=dict)
    bases: list[Base] = field(default_factory=list)
    derived: dict[int, exp.Expression] = field(default_factory=dict)  # id(aggregate) -> value

    def base_index(self, base: Base) -> int:
        for i, b in enumerate(self.bases):
            if (b.kind, b.canonical, b.owner) == (base.kind, base.canonical, base.owner):
                return i
        self.bases.append(base)
        return len(self.bases) - 1


def value_column(i: int) -> str:
    return f"__qg_v{i}"


def _lit(value: float) -> exp.Expression:
    return (
        exp.Literal.number(repr(value))
        if value >= 0
        else exp.Neg(this=exp.Literal.number(repr(-value)))
    )


def _ref(block: Block, base: Base) -> exp.Expression:
    return exp.column(value_column(block.base_index(base)), quoted=True)


def _whole(count: exp.Expression) -> exp.Expression:
    """Counts are shown as whole numbers, as noise makes the fraction meaningless."""
    return exp.Round(this=count)


def _quantile(agg: exp.AggFunc, block: Block, scope: Scope, ctx: GuardContext) -> exp.Expression:
    """``median(x)``, ``quantile_cont(x, q)``, ``percentile_cont(q) WITHIN GROUP (ORDER BY
    x)``: computed over the entities' own means, never one entity's value (:mod:`.emit`)."""
    if isinstance(agg, exp.Median):
        arg, fraction = agg.this, exp.Literal.number("0.5")
    elif isinstance(agg.parent, exp.WithinGroup):
        arg, fraction = agg.parent.expression.expressions[0].this, agg.this
    else:  # DuckDB's own spelling, which sqlglot also writes WITHIN GROUP as
        arg, fraction = agg.this, agg.args.get("expression")
        if isinstance(fraction, exp.Order):  # quantile_cont(x, q ORDER BY x)
            fraction = fraction.this
    q = number(fraction) if fraction is not None else None
    if q is None or not 0 <= q <= 1:
        raise refuse(ctx, "aggregate", f"{shown(agg)} (the fraction must be a literal 0..1)")
    a, b, column = linear(arg, ctx)
    if column is None or protected(column, scope, ctx):
        raise refuse(ctx, "aggregate argument", shown(arg))
    q = q if a >= 0 else 1 - q  # a quantile of -x is minus the opposite quantile of x
    name = canonical(column, block.datasets, block.defined)
    value = _ref(block, Base(QUANTILE, column, f"quantile:{q!r}:{name}", fraction=q))
    return exp.Add(this=exp.Mul(this=_lit(a), expression=value), expression=_lit(b))


def _sum_or_mean(
    agg: exp.AggFunc, a: float, b: float, total: exp.Expression, n: exp.Expression
) -> exp.Expression:
    """``sum(a·x + b)`` is a·sum(x) + b·count(x); ``avg(a·x + b)`` is a·sum(x)/count(x) + b."""
    if isinstance(agg, exp.Sum):
        scaled = exp.Mul(this=_lit(a), expression=total)
        return (
            scaled
            if b == 0
            else exp.Add(this=scaled, expression=exp.Mul(this=_lit(b), expression=n))
        )
    mean = exp.Div(this=exp.Mul(this=_lit(a), expression=total), expression=n)
    return mean if b == 0 else exp.Add(this=mean, expression=_lit(b))


def derive(agg: exp.AggFunc, block: Block, scope: Scope, ctx: GuardContext) -> exp.Expression:
    """The aggregate as an expression over anonymised base values."""
    if type(agg) not in POSITIONS["aggregate"].allowed:
        raise refuse(ctx, "aggregate", f"{agg.sql_name().lower()}()")
    if isinstance(agg, exp.Median | exp.PercentileCont):
        return _quantile(agg, block, scope, ctx)
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        return _distinct(agg, arg, block, scope, ctx)
    if isinstance(agg, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
        return _whole(_ref(block, Base(ROWS, None, ROWS)))
    a, b, column = linear(arg, ctx)
    if column is not None and protected(column, scope, ctx):
        raise refuse(ctx, "aggregate argument", f"the identifier {column.sql('duckdb')}")
    rows = _ref(block, Base(ROWS, None, ROWS))
    if column is None:
        value = {exp.Count: _whole(rows), exp.Sum: exp.Mul(this=_lit(b), expression=rows)}.get(
            type(agg)
        )
        if value is None:  # avg or spread of a constant
            spread = not isinstance(agg, exp.Avg)
            return exp.Mul(
                this=_lit(0.0 if spread else b), expression=exp.Div(this=rows, expression=rows)
            )
        return value
    name = canonical(column, block.datasets, block.defined)
    n = _ref(block, Base(VALUES, column, f"values:{name}"))
    if isinstance(agg, exp.Count):
        return _whole(n)
    if isinstance(agg, exp.Sum | exp.Avg):
        return _sum_or_mean(agg, a, b, _ref(block, Base(SUM, column, f"sum:{name}")), n)
    # Squares about the group's mean: their flattened contributions are the spread's own
    # size, where raw squares minus the squared sum would subtract two large noisy numbers.
    squares = _ref(block, Base(SQUARES, column, f"squares:{name}"))
    sample = isinstance(agg, exp.Stddev | exp.StddevSamp | exp.Variance)
    denominator = exp.Sub(this=n, expression=exp.Literal.number(1)) if sample else n
    variance = exp.Mul(
        this=_lit(a * a),
        expression=exp.Greatest(
            this=exp.Literal.number(0),
            expressions=[exp.Div(this=squares, expression=exp.paren(denominator))],
        ),
    )
    if isinstance(agg, exp.Stddev | exp.StddevSamp | exp.StddevPop):
        return exp.Sqrt(this=variance)
    return variance


def _distinct(
    agg: exp.AggFunc, arg: exp.Distinct, block: Block, scope: Scope, ctx: GuardContext
) -> exp.Expression:
    """``count(DISTINCT entity)`` counts entities; any other DISTINCT would count rare values."""
    columns = arg.expressions
    if (
        isinstance(agg, exp.Count)
        and len(columns) == 1
        and isinstance(bare(columns[0]), exp.Column)
    ):
        column = bare(columns[0])
        dataset = block.datasets.get(column.table)
        entity = ctx.stored_entity(dataset) if dataset else None
        if entity == column.name:
            for i, kind in enumerate(block.kinds):
                if (column.table, column.name) in kind:
                    return _whole(_ref(block, Base(ENTITIES, None, f"entities:{i}", owner=i)))
    raise refuse(
        ctx,
        "aggregate",
        f"{shown(agg)} (DISTINCT is allowed only as count(DISTINCT identifier); "
        "group by the column and count the groups instead)",
    )
