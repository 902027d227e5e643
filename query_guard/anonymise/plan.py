"""Check an aggregate-mode query against :data:`.positions.POSITIONS` and plan its blocks.

An *anonymising block* is a SELECT that aggregates rows of the datasets. For
each, the plan lists its group keys, its conditions in canonical form (the
noise layers' seeds: ``dataset.column`` names, no aliases, no TRY, literals
on the right, so rephrasing a query never draws fresh noise), the entity
kinds it reads, and every aggregate as a linear combination of *base*
aggregates over one plain column (``sum(2*x+1)`` is ``2·sum(x) + count(x)``,
so ``sum(x+0)`` and ``2*sum(x/2)`` are ``sum(x)`` and carry its noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.anonymise.positions import POSITIONS
from query_guard.compile import CONTRIBUTOR
from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import (
    column_origins,
    group_keys,
    groups_by_entity,
    is_aggregating,
    is_output,
    own_aggregates,
    scopes,
)

RULE = "QG-020"
SNAP_RULE = "QG-021"
ROWS, VALUES, SUM, SQUARES, ENTITIES = "rows", "values", "sum", "squares", "entities"
QUANTILE = "quantile"
#: The column a per-entity block's compiled form names its entity by.
PER_ENTITY = "__qg_e"


class Refused(Exception):
    """A node in a position that does not allow it; ``finding`` says which and why."""

    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def _shown(node: exp.Expression) -> str:
    """An expression for a refusal message with its literals as ``?``: refusals are
    recorded, and a literal compared with an identifier must not reach the record."""
    shown = node.copy()
    for literal in list(shown.find_all(exp.Literal)):
        literal.replace(exp.Placeholder())
    return shown.sql("duckdb")


def _refuse(ctx: GuardContext, position: str, what: str) -> Refused:
    p = POSITIONS[position]
    return Refused(
        Finding(
            RULE,
            f"{what} is not allowed as {position} in aggregate mode: {p.why}; {p.instead}",
            ctx.clause("mode"),
        )
    )


def bare(node: exp.Expression) -> exp.Expression:
    """``node`` without the guard's own safety wrappers (TRY, TRY_CAST) and parentheses."""

    def strip(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Try | exp.Paren):
            return strip(n.this)
        if isinstance(n, exp.TryCast):
            return exp.Cast(this=n.this, to=n.args["to"])
        return n

    return node.copy().transform(strip)


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


def canonical(node: exp.Expression, datasets: dict[str, str]) -> str:
    """The seed text of an expression: dataset.column names, no wrappers, literals right."""
    tree = bare(node)
    for column in tree.find_all(exp.Column):
        column.replace(exp.column(column.name, table=datasets.get(column.table, column.table)))
    for literal in tree.find_all(exp.Literal):
        if not literal.is_string:  # 37, 37.0 and 3.7e1 are one condition
            literal.replace(exp.Literal.number(str(Decimal(literal.name).normalize())))
    if isinstance(tree, exp.Binary) and _is_literal(tree.left) and not _is_literal(tree.right):
        flipped = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}
        cls = flipped.get(type(tree), type(tree))
        tree = cls(this=tree.right, expression=tree.left)
    return tree.sql("duckdb")


def _is_literal(node: exp.Expression) -> bool:
    node = bare(node)
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Cast):
        node = node.this
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null)


def _number(node: exp.Expression) -> float | None:
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
    temporal = node.args["to"].is_type(*exp.DataType.TEMPORAL_TYPES)
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


def _protected(column: exp.Column, scope: Scope, ctx: GuardContext) -> bool:
    return any(ctx.is_protected(d, c) for d, c in column_origins(column, scope))


def _bucket(node: exp.Expression, scope: Scope, ctx: GuardContext) -> None:
    """A group key or a condition's left side: one unprotected column, coarsened at most."""
    node = bare(node)
    allowed = POSITIONS["bucket"].allowed
    columns = list(node.find_all(exp.Column))
    for n in node.walk():
        if type(n) not in allowed:
            raise _refuse(ctx, "bucket", _shown(n))
    if len(columns) != 1:
        raise _refuse(ctx, "bucket", f"{_shown(node)} (not exactly one column)")
    if _protected(columns[0], scope, ctx):
        raise _refuse(ctx, "bucket", f"the identifier {columns[0].sql('duckdb')}")
    for n in node.find_all(exp.Div, exp.Mul):
        width = _number(n.expression)
        if width is None or not _is_round(repr(abs(width))):
            raise Refused(
                Finding(
                    SNAP_RULE,
                    f"the bin width in {n.sql('duckdb')} must be a round literal with one "
                    "significant digit (e.g. floor(age / 10) * 10)",
                    ctx.clause("mode"),
                )
            )


def _atoms(condition: exp.Expression) -> list[exp.Expression]:
    condition = bare(condition)
    if isinstance(condition, exp.And):
        return _atoms(condition.left) + _atoms(condition.right)
    return [condition]


def _condition(atom: exp.Expression, scope: Scope, ctx: GuardContext) -> None:
    """``column = value``, a range with round bounds, or ``column IS NULL``.

    Only conditions that keep a class of rows: with IN lists, negations, ``<>`` or OR a
    pair of queries can differ by exactly one person (``age IN (33..37)`` against
    ``age IN (33..36)``), and averaging many such pairs removes any noise.
    """
    if type(atom) not in POSITIONS["condition"].allowed or atom.find(exp.Subquery, exp.Select):
        raise _refuse(ctx, "condition", _shown(atom))
    if isinstance(atom, exp.Is):
        if not isinstance(atom.expression, exp.Null):
            raise _refuse(ctx, "condition", _shown(atom))
        _bucket(atom.this, scope, ctx)
        return
    if isinstance(atom, exp.Between):
        _bucket(atom.this, scope, ctx)
        for bound in (atom.args["low"], atom.args["high"]):
            if not _is_literal(bound):
                raise _refuse(ctx, "condition", _shown(atom))
            _snapped(bound, ctx)
        return
    left, right = atom.left, atom.right
    if _is_literal(left):
        left, right = right, left
    if not _is_literal(right):
        raise _refuse(ctx, "condition", _shown(atom))
    _bucket(left, scope, ctx)
    if not isinstance(atom, exp.EQ):
        _snapped(right, ctx)


def _linear(node: exp.Expression, ctx: GuardContext) -> tuple[float, float, exp.Column | None]:
    """``node`` as a·column + b, or refused."""
    node = bare(node)
    if isinstance(node, exp.Cast) and node.args["to"].is_type(*exp.DataType.NUMERIC_TYPES):
        return _linear(node.this, ctx)
    if isinstance(node, exp.Column):
        return 1.0, 0.0, node
    value = _number(node)
    if value is not None:
        return 0.0, value, None
    if type(node) not in POSITIONS["aggregate argument"].allowed:
        raise _refuse(ctx, "aggregate argument", _shown(node))
    if isinstance(node, exp.Neg):
        a, b, c = _linear(node.this, ctx)
        return -a, -b, c
    la, lb, lc = _linear(node.left, ctx)
    ra, rb, rc = _linear(node.right, ctx)
    if isinstance(node, exp.Add | exp.Sub):
        sign = 1.0 if isinstance(node, exp.Add) else -1.0
        if lc is not None and rc is not None and lc.sql() != rc.sql():
            raise _refuse(ctx, "aggregate argument", f"{_shown(node)} (two columns)")
        return la + sign * ra, lb + sign * rb, lc or rc
    if isinstance(node, exp.Mul) and (lc is None or rc is None):
        if lc is None:
            return ra * lb, rb * lb, rc
        return la * rb, lb * rb, lc
    if isinstance(node, exp.Div) and rc is None and rb != 0:
        return la / rb, lb / rb, lc
    raise _refuse(ctx, "aggregate argument", _shown(node))


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
    q = _number(fraction) if fraction is not None else None
    if q is None or not 0 <= q <= 1:
        raise _refuse(ctx, "aggregate", f"{_shown(agg)} (the fraction must be a literal 0..1)")
    a, b, column = _linear(arg, ctx)
    if column is None or _protected(column, scope, ctx):
        raise _refuse(ctx, "aggregate argument", _shown(arg))
    q = q if a >= 0 else 1 - q  # a quantile of -x is minus the opposite quantile of x
    name = canonical(column, block.datasets)
    value = _ref(block, Base(QUANTILE, column, f"quantile:{q!r}:{name}", fraction=q))
    return exp.Add(this=exp.Mul(this=_lit(a), expression=value), expression=_lit(b))


def _derive(agg: exp.AggFunc, block: Block, scope: Scope, ctx: GuardContext) -> exp.Expression:
    """The aggregate as an expression over anonymised base values."""
    if type(agg) not in POSITIONS["aggregate"].allowed:
        raise _refuse(ctx, "aggregate", f"{agg.sql_name().lower()}()")
    if isinstance(agg, exp.Median | exp.PercentileCont):
        return _quantile(agg, block, scope, ctx)
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        return _distinct(agg, arg, block, scope, ctx)
    if isinstance(agg, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
        return _whole(_ref(block, Base(ROWS, None, ROWS)))
    a, b, column = _linear(arg, ctx)
    if column is not None and _protected(column, scope, ctx):
        raise _refuse(ctx, "aggregate argument", f"the identifier {column.sql('duckdb')}")
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
    name = canonical(column, block.datasets)
    n = _ref(block, Base(VALUES, column, f"values:{name}"))
    if isinstance(agg, exp.Count):
        return _whole(n)
    total = _ref(block, Base(SUM, column, f"sum:{name}"))
    if isinstance(agg, exp.Sum):
        scaled = exp.Mul(this=_lit(a), expression=total)
        return (
            scaled
            if b == 0
            else exp.Add(this=scaled, expression=exp.Mul(this=_lit(b), expression=n))
        )
    if isinstance(agg, exp.Avg):
        mean = exp.Div(this=exp.Mul(this=_lit(a), expression=total), expression=n)
        return mean if b == 0 else exp.Add(this=mean, expression=_lit(b))
    squares = _ref(block, Base(SQUARES, column, f"squares:{name}"))
    sample = isinstance(agg, exp.Stddev | exp.StddevSamp | exp.Variance)
    spread = exp.Sub(
        this=squares, expression=exp.Div(this=exp.Mul(this=total, expression=total), expression=n)
    )
    denominator = exp.Sub(this=n, expression=exp.Literal.number(1)) if sample else n
    variance = exp.Mul(
        this=_lit(a * a),
        expression=exp.Greatest(
            this=exp.Literal.number(0), expressions=[exp.Div(this=spread, expression=denominator)]
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
    raise _refuse(
        ctx,
        "aggregate",
        f"{_shown(agg)} (DISTINCT is allowed only as count(DISTINCT identifier); "
        "group by the column and count the groups instead)",
    )


def _kinds(
    select: exp.Select, datasets: dict[str, str], ctx: GuardContext
) -> list[list[tuple[str, str]]]:
    """Entity kinds: the stored entity and every other identifier column (a person's ID
    beside an organisation's credit code) of the block's tables, merged where a join
    equates them, so that every rule holds for each kind of entity."""
    kinds: list[list[tuple[str, str]]] = []
    for alias, dataset in datasets.items():
        entity = ctx.stored_entity(dataset)
        identifiers = [c for c in ctx.schema[dataset] if ctx.is_identifier(dataset, c)]
        for column in dict.fromkeys([*([entity] if entity else []), *identifiers]):
            kinds.append([(alias, column)])
    for join in select.args.get("joins") or []:
        for eq in (join.args.get("on") or exp.true()).find_all(exp.EQ):
            sides = [bare(s) for s in (eq.left, eq.right)]
            if not all(isinstance(s, exp.Column) for s in sides):
                continue
            found = [k for k in kinds if any((s.table, s.name) in k for s in sides)]
            if len(found) == 2 and found[0] is not found[1]:
                found[0].extend(found[1])
                kinds.remove(found[1])
    return kinds


def _reads_tables(scope: Scope) -> bool:
    return any(isinstance(s, exp.Table) for _, s in scope.selected_sources.values())


def is_per_entity(scope: Scope, ctx: GuardContext) -> bool:
    """A block that aggregates the datasets grouped by the entity: each row is one entity's,
    so it is never shown itself, only aggregated again by an anonymising block."""
    query = scope.expression
    return (
        isinstance(query, exp.Select)
        and is_aggregating(query)
        and _reads_tables(scope)
        and groups_by_entity(scope, ctx)
    )


def is_anonymising(scope: Scope, ctx: GuardContext) -> bool:
    """An aggregating SELECT over the datasets' rows or over per-entity rows."""
    query = scope.expression
    if not isinstance(query, exp.Select) or not is_aggregating(query):
        return False
    per_entity = any(
        isinstance(s, Scope) and is_per_entity(s, ctx) for _, s in scope.selected_sources.values()
    )
    return per_entity or (_reads_tables(scope) and not is_per_entity(scope, ctx))


def _entity_key(key: exp.Expression, scope: Scope, ctx: GuardContext) -> str | None:
    """How a per-entity block's entity is named for contributions: the contributor key of
    the dataset version where the key is its entity, else the key (a pseudonym) itself."""
    key = bare(key)
    if not isinstance(key, exp.Column):
        return None
    for dataset, column in column_origins(key, scope):
        if ctx.entity(dataset) == column:
            return f'any_value("{key.table}"."{CONTRIBUTOR}")'
    return None


def _check_per_entity(scope: Scope, ctx: GuardContext) -> str:
    """A per-entity block's positions: conditions and group keys as any block's (the
    entity besides), aggregates of one column each. Returns its entity's SQL."""
    query = scope.expression
    if is_output(scope):
        raise _refuse(ctx, "relation", "rows of one entity each (aggregate them again)")
    where = query.args.get("where")
    for atom in _atoms(where.this) if where else []:
        _condition(atom, scope, ctx)
    entity = None
    for key in group_keys(query):
        entity = entity or _entity_key(key, scope, ctx)
        if _entity_key(key, scope, ctx) is None:
            _bucket(key, scope, ctx)
    for agg in own_aggregates(query):
        if type(agg) not in POSITIONS["per-entity aggregate"].allowed:
            raise _refuse(ctx, "per-entity aggregate", f"{agg.sql_name().lower()}()")
        if agg.find(exp.Subquery, exp.Select, exp.Window):
            raise _refuse(ctx, "aggregate argument", "a subquery or window")
        if agg.this is not None and not isinstance(agg.this, exp.Star):
            _linear(agg.this, ctx)
    assert entity is not None  # groups_by_entity found it
    return entity


def _windows_over_rows(scope: Scope, ctx: GuardContext) -> None:
    query = scope.expression
    if not isinstance(query, exp.Select) or is_aggregating(query):
        return
    for window in query.find_all(exp.Window):
        if window.find_ancestor(exp.Select) is query:
            raise _refuse(ctx, "window over rows", _shown(window))


def plan_block(scope: Scope, ctx: GuardContext) -> Block:
    """Check one anonymising block position by position and plan it (or raise Refused)."""
    query = scope.expression
    datasets: dict[str, str] = {}
    keyed_by: set[str] = set()
    inner: dict[str, tuple[exp.Select, str]] = {}
    sources = scope.selected_sources.items()
    for alias, (_, source) in sources:
        if isinstance(source, exp.Table):
            datasets[alias] = source.name
            keyed_by.add(source.name)
        elif isinstance(source, Scope) and is_per_entity(source, ctx) and len(sources) == 1:
            inner[alias] = (source.expression, _check_per_entity(source, ctx))
            tables = [s for _, s in source.selected_sources.values()]
            keyed_by.update(t.name for t in tables)
            datasets[alias] = "/".join(sorted(t.name for t in tables)) + "/per-entity"
        else:
            raise _refuse(
                ctx, "relation", f"{alias} (a WITH query or subquery read beside a dataset)"
            )
    where = query.args.get("where")
    atoms = _atoms(where.this) if where else []
    for part in ("where", "group"):
        node = query.args.get(part)
        if node is not None and node.find(exp.Subquery, exp.Select):
            raise _refuse(ctx, "condition", "a subquery")
    for atom in atoms:
        _condition(atom, scope, ctx)
    keys = group_keys(query)
    for key in keys:
        _bucket(key, scope, ctx)
    block = Block(
        select=query,
        datasets=datasets,
        kinds=[] if inner else _kinds(query, datasets, ctx),
        keys=keys,
        key_texts=[canonical(k, datasets) for k in keys],
        atoms=atoms,
        conditions=[canonical(a, datasets) for a in atoms],
        keyed_by=tuple(sorted(keyed_by)),
        inner=inner,
    )
    if inner:
        block.kinds = [[(alias, PER_ENTITY) for alias in inner]]
    for agg in own_aggregates(query):
        if agg.find(exp.Subquery, exp.Select, exp.Window):
            raise _refuse(ctx, "aggregate argument", "a subquery or window")
        holder = agg.parent if isinstance(agg.parent, exp.WithinGroup) else agg
        block.derived[id(holder)] = _derive(agg, block, scope, ctx)
    return block


def check(tree: exp.Expression, ctx: GuardContext) -> list[Finding]:
    """The guard rule: every aggregate-mode block within its positions' allowlist."""
    if ctx.mode != "aggregate":
        return []
    try:
        for scope in scopes(tree):
            _windows_over_rows(scope, ctx)
            if is_anonymising(scope, ctx):
                plan_block(scope, ctx)
            elif is_per_entity(scope, ctx):
                _check_per_entity(scope, ctx)
            elif (
                isinstance(scope.expression, exp.Select)
                and _reads_tables(scope)
                and not is_output(scope)
            ):
                raise _refuse(ctx, "relation", "a WITH query or subquery that does not aggregate")
    except Refused as refused:
        return [refused.finding]
    return []
