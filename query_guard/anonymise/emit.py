"""Compile each anonymising block into SQL that returns only anonymised values.

For one block ``SELECT keys, aggs FROM datasets WHERE conds GROUP BY keys``::

    src      every row: bucket keys, one entity per kind, the base aggregates'
             arguments, and whether each condition holds
    lede/led/drop   per bucket, how many entities each condition alone leaves out;
             a condition that leaves out too few is dropped there (low effect)
    rows     the rows the kept conditions keep
    ent_k    per (bucket, entity of kind k): each entity's contribution to each base
    bkt_k    per bucket: entities, contributing entities and their XOR, total,
             largest contributions (for each base)
    anon     per bucket: kept or not (noisy threshold), each base's total
             flattened and perturbed (NULL when it has too few contributors)
    result   the block's own projection, HAVING, ORDER BY and LIMIT over ``anon``

Without conditions ``src`` is ``rows``. The cost beyond the user's own query is
one grouping by (bucket, entity), and with conditions a scan without them and
one more grouping; the anonymising functions run once per bucket and base
(:mod:`.noise`). The root block also returns hidden columns saying which
values and whether any groups were suppressed; :func:`.result.split_suppression`
takes them off. Parts of the checked tree are printed without copies: DuckDB's
generator changes no node of a checked query (see :mod:`query_guard.guard`).
"""

from __future__ import annotations

from functools import partial

import sqlglot
from sqlglot import exp

from query_guard.anonymise import fast
from query_guard.anonymise.derive import (
    ENTITIES,
    PER_ENTITY,
    QUANTILE,
    ROWS,
    SQUARES,
    VALUES,
    Block,
    value_column,
)
from query_guard.anonymise.failsafe import condition_sql, key_sql
from query_guard.anonymise.names import drop, flag, literal, q, static
from query_guard.anonymise.noise import (
    ADJUST_FUNCTION,
    LOW_EFFECT_FUNCTION,
    PASS_FUNCTION,
    QUANTILE_FUNCTION,
    TOP_CONTRIBUTIONS,
)
from query_guard.anonymise.plan import is_anonymising, plan_block
from query_guard.anonymise.result import DROPPED, SUPPRESSED_PREFIX
from query_guard.compile import CONTRIBUTOR, PRIVATE_SCHEMA
from query_guard.context import GuardContext
from query_guard.lineage import scopes

#: Entities either side of a quantile's rank whose mean is shown: five values, never one.
WINDOW = 2


def _argument(block: Block, j: int) -> str | None:
    base = block.bases[j]
    if base.kind in (ROWS, ENTITIES):
        return None
    column = base.column.sql("duckdb", copy=False)  # type: ignore[union-attr]
    if base.kind == VALUES:
        return column
    return f"TRY_CAST({column} AS DOUBLE)"


def _per_entity(block: Block, j: int) -> str:
    base = block.bases[j]
    if base.kind == ROWS:
        return "count(*)"
    if base.kind == ENTITIES:
        return f"count(DISTINCT {q(f'__qg_e{base.owner}')})"
    arg = q(f"__qg_a{j}")
    if base.kind == SQUARES:  # about the group's mean (:func:`_centred_cte`)
        return f"sum({arg} * {arg})"
    return f"count({arg})" if base.kind == VALUES else f"sum({arg})"


def _private(select: exp.Select) -> exp.Select:
    """``select`` changed in place to read the private tables, which hold the entity,
    instead of the researcher's views."""
    for table in list(select.find_all(exp.Table)):
        if table.find_ancestor(exp.Select) is select:  # not a nested query's
            stored = exp.Table(
                this=exp.to_identifier(table.name, quoted=True),
                db=exp.to_identifier(PRIVATE_SCHEMA, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name, quoted=True)),
            )
            table.replace(stored)
    return select


def _gated(node: exp.Expression, gate: str | None) -> exp.Expression:
    """``node`` (a FROM, a JOIN or a query) with each of its own private tables read only
    where ``gate`` holds: a condition on no row, true when any bucket goes the exact way.

    DuckDB builds a join's hash table before it knows that the rows it feeds are not
    needed: ungated, the exact way's rows of a join cost the whole join (and more, when it
    made the joined rows the build side of the bucket filter) even where every bucket was
    settled by the fast path (:mod:`.fast`). A gated table yields no row instead."""
    if gate is None:
        return node
    for table in list(node.find_all(exp.Table)):
        if table.find_ancestor(exp.Select) in (None, node):  # not a nested query's
            rows = exp.select("*").from_(exp.table_(table.name, db=PRIVATE_SCHEMA, quoted=True))
            rows = rows.where(gate, dialect="duckdb", copy=False)
            table.replace(exp.alias_(exp.Subquery(this=rows), table.alias_or_name, quoted=True))
    return node


def _per_entity_rows(
    inner: exp.Select, entity: str, alias: str, gate: str | None = None
) -> exp.Expression:
    """A per-entity block as the rows of an anonymising block, naming each row's entity."""
    rows = _private(inner.copy())  # the researcher's WITH query keeps its own
    rows.select(exp.alias_(sqlglot.parse_one(entity, read="duckdb"), PER_ENTITY), copy=False)
    return exp.alias_(exp.Subquery(this=_gated(rows, gate)), alias, quoted=True)


def _from_clause(block: Block, gate: str | None = None) -> str:
    """The block's FROM and JOINs over the private tables, or over its per-entity rows,
    read where ``gate`` holds (:func:`_gated`); its WHERE is applied condition by
    condition (:func:`_low_effect_ctes`)."""
    if block.inner:
        [(alias, (inner, entity))] = block.inner.items()
        return f"FROM {_per_entity_rows(inner, entity, alias, gate).sql('duckdb', copy=False)}"
    # The block's tables are read nowhere else: its compiled form replaces the block.
    select = _private(block.select)
    parts = [select.args["from_"], *(select.args.get("joins") or [])]
    if gate is not None:
        parts = [_gated(part.copy(), gate) for part in parts]
    return " ".join(part.sql("duckdb", copy=False) for part in parts)


def _entity(block: Block, kind: list[tuple[str, str]], ctx: GuardContext) -> str:
    """How a kind's entity is named in the rows: by the dataset version's contributor key
    where it is the dataset's entity (alike in every agreement), else by its pseudonym;
    without any entity every row is its own contributor."""
    for alias, column in kind:
        if ctx.stored_entity(block.datasets[alias]) == column:
            return f"{q(alias)}.{q(CONTRIBUTOR)}"
    alias, column = kind[0] if kind else (next(iter(block.datasets)), "rowid")
    return f"{q(alias)}.{q(column)}"


def _row_columns(block: Block, ctx: GuardContext) -> str:
    """The columns of the block's rows: bucket keys, one entity per kind, the base
    aggregates' arguments, and whether each condition holds (NULL counts as not)."""
    cols = [f"{key_sql(k, block, ctx)} AS {q(f'__qg_g{i}')}" for i, k in enumerate(block.keys)]
    for k, kind in enumerate(block.kinds or [[]]):
        cols.append(f"{_entity(block, kind, ctx)} AS {q(f'__qg_e{k}')}")
    if fast.eligible(block):
        cols.append(f"{fast.seed_sql(_entity(block, block.kinds[0], ctx))} AS {q('__qg_s0')}")
    for j in range(len(block.bases)):
        arg = _argument(block, j)
        if arg is not None:
            cols.append(f"{arg} AS {q(f'__qg_a{j}')}")
    for i, atom in enumerate(block.atoms):
        cols.append(f"{condition_sql(atom, block, ctx)} AS {flag(i)}")
    return ", ".join(cols)


def _gated_rows(block: Block, columns: str, gate: str) -> str:
    """The block's rows read where ``gate`` holds (:func:`_gated`)."""
    return f"SELECT {columns} {_from_clause(block, gate)}"


def _low_effect_ctes(block: Block, ctx: GuardContext, source: str, n: int) -> tuple[list[str], str]:
    """The block's rows under its conditions, where a condition that changes few entities
    in a bucket is dropped there (Diffix's low-effect detection).

    A condition that leaves out exactly one person (``income < 100000`` when only the
    target earns more) would let two queries differ by that person alone; its noise
    layer would make the difference noisy, but the spread of many such differences still
    tells whether the person was in. Dropped (rows and noise layer), the condition makes
    both queries the same query. A condition that leaves out no one is dropped too, so
    that being dropped does not tell whether anyone was left out.
    """
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    m = len(block.atoms)
    e = q("__qg_e0")
    every = " AND ".join(flag(i) for i in range(m))
    only = [
        " AND ".join([*(flag(o) for o in range(m) if o != i), f"NOT {flag(i)}"]) for i in range(m)
    ]
    per = [f"bool_or({every}) AS {q('__qg_in')}"] + [
        f"bool_or({cond}) AS {q(f'__qg_x{i}')}" for i, cond in enumerate(only)
    ]
    led_e, led, drops, rows = (f"__qg_{w}{n}" for w in ("lede", "led", "drop", "rows"))
    keys = ", ".join([*g, e])
    # A bucket is there when a row meets every condition, or every condition but one,
    # which low effect may drop: were it only the former, whether a bucket of one entity
    # is there (and suppressed, as the result says) would tell whether that entity meets
    # the condition.
    present = " OR ".join([q("__qg_in"), *(q(f"__qg_x{i}") for i in range(m))])
    stats = [f"bool_or({present}) AS {q('__qg_present')}"]
    for i in range(m):
        x = q(f"__qg_x{i}")
        stats += [
            f"count(*) FILTER (WHERE {x}) AS {q(f'__qg_ln{i}')}",
            f"bit_xor(hash({e})) FILTER (WHERE {x}) AS {q(f'__qg_lx{i}')}",
        ]
    grouping = f" GROUP BY {', '.join(g)}" if g else ""
    decisions = [
        f"{LOW_EFFECT_FUNCTION}({literal(static(block, ctx, 'low-effect:' + text))}, "
        f"{q(f'__qg_ln{i}')}, {q(f'__qg_lx{i}')}) AS {drop(i)}"
        for i, text in enumerate(block.conditions)
    ]
    on = " AND ".join(f"r.{c} IS NOT DISTINCT FROM d.{c}" for c in g) or "true"
    keep = " AND ".join(f"(r.{flag(i)} OR d.{drop(i)})" for i in range(m))
    carried = ", ".join(f"d.{drop(i)}" for i in range(m))
    return [
        f"{q(led_e)} AS (SELECT {keys}, {', '.join(per)} FROM {q(source)} GROUP BY {keys})",
        f"{q(led)} AS (SELECT {', '.join([*g, *stats])} FROM {q(led_e)}{grouping})",
        f"{q(drops)} AS (SELECT {', '.join([*g, *decisions])} FROM {q(led)} "
        f"WHERE {q('__qg_present')})",
        f"{q(rows)} AS (SELECT r.*, {carried} FROM {q(source)} AS r JOIN {q(drops)} AS d "
        f"ON {on} WHERE {keep})",
    ], rows


def _summed(block: Block) -> list[int]:
    """The bases summed per entity (all but quantiles)."""
    return [j for j, b in enumerate(block.bases) if b.kind != QUANTILE]


def _quantile_ctes(block: Block, ent: str, j: int, stats: str) -> list[str]:
    """A quantile from each entity's own mean (a column of the entities' CTE ``ent``): the
    mean of the entities ranked within :data:`WINDOW` of the quantile's rank (never one
    entity's value), their spread (the noise's scale), and how many entities and which
    (the threshold's seed).

    Without sorting them: an exact order statistic (``quantile_disc``, within one rank of
    the quantile's) is a pivot, and each rank of the window is read from the counts below
    and at the pivot and the :data:`WINDOW` + 1 nearest means either side of it, as the
    sorted list has them (``tests/query_guard/test_anonymise_fast.py`` checks both agree).
    A rank they did not reach would leave the value NULL, suppressed.
    """
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    e, v = q("__qg_e0"), q(f"__qg_q{j}")
    vals, piv, near = (q(f"{stats}_{part}") for part in ("v", "p", "n"))
    keys = "".join(f"{c}, " for c in g)
    grouping = f" GROUP BY {', '.join(g)}" if g else ""
    on = " AND ".join(f"{vals}.{c} IS NOT DISTINCT FROM {piv}.{c}" for c in g) or "true"
    wide = WINDOW + 1
    below = f"max({v}, {wide}) FILTER (WHERE {v} < p)"  # nearest first
    above = f"min({v}, {wide}) FILTER (WHERE {v} > p)"
    rank = f"({block.bases[j].fraction!r} * (n - 1) + 1)"
    start = f"CAST(floor({rank}) AS BIGINT)"
    ranks = (
        f"list_filter(range({start} - {wide}, {start} + {wide + 1}), "
        f"lambda r: r >= 1 AND r <= n AND abs(r - {rank}) <= {WINDOW})"
    )
    window = (
        f"list_transform({ranks}, lambda r: CASE WHEN r <= lt THEN below[lt - r + 1] "
        f"WHEN r <= le THEN p ELSE above[r - le] END)"
    )
    return [
        f"{vals} AS (SELECT {keys}{e}, {v} FROM {q(ent)} WHERE {v} IS NOT NULL)",
        f"{piv} AS (SELECT {keys}count(*) AS n, bit_xor(hash({e})) AS x, "
        f"quantile_disc({v}, {block.bases[j].fraction!r}) AS p FROM {vals}{grouping})",
        f"{near} AS (SELECT {''.join(f'{piv}.{c}, ' for c in g)}any_value(n) AS n, "
        f"any_value(x) AS x, any_value(p) AS p, count(*) FILTER (WHERE {v} < p) AS lt, "
        f"count(*) FILTER (WHERE {v} <= p) AS le, {below} AS below, {above} AS above "
        f"FROM {vals} JOIN {piv} ON {on}"
        + (f" GROUP BY {', '.join(f'{piv}.{c}' for c in g)}" if g else "")
        + ")",
        f"{q(stats)} AS (SELECT {keys}n, x, CASE WHEN list_count(w) = len(w) THEN "
        f"list_avg(w) END AS center, list_max(w) - list_min(w) AS spread "
        f"FROM (SELECT *, {window} AS w FROM {near}))",
    ]


def _kind_ctes(block: Block, rows: str, k: int, ent: str, bkt: str) -> list[str]:
    """Per entity of kind ``k`` its contribution to each base; per bucket their statistics."""
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    e = q(f"__qg_e{k}")
    summed = _summed(block)
    per = [f"{_per_entity(block, j)} AS {q(f'__qg_b{j}')}" for j in summed]
    keys = ", ".join([*g, e])
    stats = [f"count(*) AS {q(f'__qg_n_{k}')}", f"bit_xor(hash({e})) AS {q(f'__qg_x_{k}')}"]
    for j in summed:
        b = q(f"__qg_b{j}")
        contributes = f"FILTER (WHERE {b} <> 0)"  # NULL and zero contribute nothing
        top = f"max_by({b}, abs({b}), {TOP_CONTRIBUTIONS})"
        stats += [
            f"count(*) {contributes} AS {q(f'__qg_n{j}_{k}')}",
            f"bit_xor(hash({e})) {contributes} AS {q(f'__qg_x{j}_{k}')}",
            f"CAST({top} AS DOUBLE[]) AS {q(f'__qg_top{j}_{k}')}",
        ]
        if k == 0:
            stats.append(f"CAST(sum({b}) AS DOUBLE) AS {q(f'__qg_t{j}')}")
    if k == 0:  # which conditions this bucket kept, for its noise layers
        kept = ", ".join(f"NOT bool_or({drop(i)})" for i in range(len(block.atoms)))
        stats.append(f"[{kept}]::BOOLEAN[] AS {q('__qg_kept')}")
        per += [f"bool_or({drop(i)}) AS {drop(i)}" for i in range(len(block.atoms))]
        # each entity's own mean, which quantiles rank (:func:`_quantile_ctes`)
        per += [
            f"avg({q(f'__qg_a{j}')}) AS {q(f'__qg_q{j}')}"
            for j, b in enumerate(block.bases)
            if b.kind == QUANTILE
        ]
    grouping = f" GROUP BY {', '.join(g)}" if g else ""
    return [
        f"{q(ent)} AS (SELECT {keys}, {', '.join(per)} FROM {q(rows)} GROUP BY {keys})",
        f"{q(bkt)} AS (SELECT {', '.join([*g, *stats])} FROM {q(ent)}{grouping})",
    ]


def _anon_cte(
    block: Block, ctx: GuardContext, buckets: list[str], quantiles: dict[int, str], anon: str
) -> str:
    """Per bucket: kept or not, and each base's total flattened and perturbed."""
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    first = q(buckets[0])
    source = first
    for bkt in buckets[1:]:
        on = " AND ".join(f"{first}.{c} IS NOT DISTINCT FROM {q(bkt)}.{c}" for c in g)
        source += f" JOIN {q(bkt)} ON {on or 'true'}"
    values = f"[{', '.join(f'CAST({first}.{c} AS VARCHAR)' for c in g)}]::VARCHAR[]"
    bucket = literal(static(block, ctx, "bucket"))
    kept = f"{first}.{q('__qg_kept')}"
    keep = " AND ".join(
        f"coalesce({PASS_FUNCTION}({bucket}, {values}, {kept}, {q(f'__qg_n_{k}')}, "
        f"{q(f'__qg_x_{k}')}), false)"
        for k in range(len(buckets))
    )
    cols = [f"{first}.{c} AS {c}" for c in g] + [f"{keep} AS {q('__qg_keep')}"]
    for j, base in enumerate(block.bases):
        described = literal(static(block, ctx, base.canonical))
        if base.kind == QUANTILE:
            qs = q(quantiles[j])
            on = " AND ".join(f"{first}.{c} IS NOT DISTINCT FROM {qs}.{c}" for c in g) or "true"
            source += f" LEFT JOIN {qs} ON {on}"
            noise = (
                f"{QUANTILE_FUNCTION}({described}, {values}, {kept}, {qs}.n, {qs}.x, {qs}.spread)"
            )
            cols.append(f"{qs}.center + {noise} AS {q(value_column(j))}")
            continue
        adjust = " + ".join(
            f"{ADJUST_FUNCTION}({described}, {values}, {kept}, {q(f'__qg_n{j}_{k}')}, "
            f"{q(f'__qg_x{j}_{k}')}, {q(f'__qg_t{j}')}, {q(f'__qg_top{j}_{k}')})"
            for k in range(len(buckets))
        )
        cols.append(f"{q(f'__qg_t{j}')} + {adjust} AS {q(value_column(j))}")
    return f"{q(anon)} AS (SELECT {', '.join(cols)} FROM {source})"


def _centred_cte(block: Block, rows: str, centred: str) -> str:
    """The rows with each spread's argument taken about its group's mean, so that a
    variance is a sum of squares of its own size (flattened and perturbed as such)."""
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    part = f"PARTITION BY {', '.join(g)}" if g else ""
    columns = [
        f"{q(f'__qg_a{j}')} - avg({q(f'__qg_a{j}')}) OVER ({part}) AS {q(f'__qg_a{j}')}"
        for j, b in enumerate(block.bases)
        if b.kind == SQUARES
    ]
    return f"{q(centred)} AS (SELECT * REPLACE ({', '.join(columns)}) FROM {q(rows)})"


def _ctes(block: Block, ctx: GuardContext, n: int) -> tuple[list[str], str]:
    """The WITH entries computing the block's anonymised buckets, and their name."""
    source, anon = f"__qg_src{n}", f"__qg_anon{n}"
    columns = _row_columns(block, ctx)
    rows_select = f"SELECT {columns} {_from_clause(block)}"
    # Read by the fast path and the exact way alike: inlined, never stored.
    ctes = [f"{q(source)} AS NOT MATERIALIZED ({rows_select})"]
    settled = None
    if fast.eligible(block):
        joined = block.inner or block.select.args.get("joins")
        gated = partial(_gated_rows, block, columns) if joined else None
        quick, settled, source = fast.ctes(block, ctx, (source, rows_select), n, gated)
        ctes += quick
        anon = f"__qg_exact{n}"
    if block.atoms:
        filtered, rows = _low_effect_ctes(block, ctx, source, n)
        ctes += filtered
    else:
        rows = source
    if any(b.kind == SQUARES for b in block.bases):
        ctes.append(_centred_cte(block, rows, f"__qg_centred{n}"))
        rows = f"__qg_centred{n}"
    buckets = []
    for k in range(len(block.kinds or [[]])):
        bkt = f"__qg_bkt{n}_{k}"
        ctes += _kind_ctes(block, rows, k, f"__qg_ent{n}_{k}", bkt)
        buckets.append(bkt)
    quantiles = {}
    for j, base in enumerate(block.bases):
        if base.kind == QUANTILE:
            quantiles[j] = f"__qg_qs{n}_{j}"
            ctes += _quantile_ctes(block, f"__qg_ent{n}_0", j, quantiles[j])
    ctes.append(_anon_cte(block, ctx, buckets, quantiles, anon))
    if settled is not None:
        both = f"__qg_anon{n}"
        ctes.append(
            f"{q(both)} AS (SELECT * FROM {q(settled)} UNION ALL BY NAME SELECT * FROM {q(anon)})"
        )
        anon = both
    return ctes, anon


def _rewrite(node: exp.Expression, block: Block) -> exp.Expression:
    """Replace the block's aggregates and group keys, never inside nested queries."""
    if id(node) in block.derived:
        return block.derived[id(node)].copy()
    for i, key in enumerate(block.keys):
        if type(node) is type(key) and node == key:
            return exp.column(f"__qg_g{i}", quoted=True)
    if isinstance(node, exp.Subquery | exp.Query) and node is not block.select:
        return node
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _rewrite(value, block))
        elif isinstance(value, list):
            node.set(
                key, [_rewrite(v, block) if isinstance(v, exp.Expression) else v for v in value]
            )
    return node


def _compile_block(block: Block, ctx: GuardContext, n: int, root: bool) -> tuple[list[str], str]:
    """The block's WITH entries (hoisted to the statement) and the SELECT replacing it."""
    ctes, anon = _ctes(block, ctx, n)
    select = block.select
    projections = [_rewrite(p, block) for p in select.expressions]
    having = select.args.get("having")
    conditions = [f"{q('__qg_keep')}"]
    if having is not None:
        conditions.append(f"({_rewrite(having.this, block).sql('duckdb', copy=False)})")
    flags: list[str] = []
    if root:
        for i, p in enumerate(projections):
            refs = sorted({c.name for c in p.find_all(exp.Column) if c.name.startswith("__qg_v")})
            if refs:
                test = " OR ".join(f"{q(r)} IS NULL" for r in refs)
                flags.append(f"({test}) AS {q(f'{SUPPRESSED_PREFIX}{i}')}")
        flags.append(q(DROPPED))
    body = ", ".join([*(p.sql("duckdb", copy=False) for p in projections), *flags])
    distinct = "DISTINCT " if select.args.get("distinct") else ""
    source = q(anon)
    if root:  # whether any bucket was left out, over all of them (one pass, not a second)
        dropped = f"coalesce(bool_or(NOT {q('__qg_keep')}) OVER (), false) AS {q(DROPPED)}"
        source = f"(SELECT *, {dropped} FROM {source}) AS {source}"
    parts = [f"SELECT {distinct}{body} FROM {source} WHERE {' AND '.join(conditions)}"]
    order = select.args.get("order")
    if order is not None:
        parts.append(_rewrite(order, block).sql("duckdb", copy=False))
    parts += [
        select.args[p].sql("duckdb", copy=False) for p in ("limit", "offset") if select.args.get(p)
    ]
    return ctes, " ".join(parts)


def anonymise(tree: exp.Expression, ctx: GuardContext) -> str:
    """The SQL of ``tree`` (checked, rewritten) with every anonymising block compiled,
    innermost first.

    Each block's own WITH entries go to the front of the statement's WITH, where
    every block (and every query of the researcher's) can read them. They are
    joined as text: they were generated as text, and parsing them again only to
    print them would cost most of the decision's time.
    """
    planned = [plan_block(s, ctx) for s in scopes(tree) if is_anonymising(s, ctx)]
    user_with = tree.args.get("with_")
    hoisted: list[str] = []
    root_sql = None  # the root block's compiled text, which nothing needs as a tree
    for n, block in enumerate(planned):
        root = block.select is tree
        ctes, compiled = _compile_block(block, ctx, n, root)
        hoisted += ctes
        if root:
            root_sql = compiled
        else:
            block.select.replace(sqlglot.parse_one(compiled, read="duckdb"))
    # The tree is not used again: the generator may work on it instead of a copy.
    if not hoisted:
        return tree.sql("duckdb", comments=False, copy=False)
    theirs = (
        [cte.sql("duckdb", comments=False, copy=False) for cte in user_with.expressions]
        if user_with
        else []
    )
    if root_sql is None:
        if isinstance(tree, exp.Select):
            # A block over anonymised blocks: its values are perturbed too, say so.
            tree.select(exp.alias_(exp.false(), DROPPED, quoted=True), copy=False)
        tree.set("with_", None)
        root_sql = tree.sql("duckdb", comments=False, copy=False)
    return f"WITH {', '.join([*hoisted, *theirs])} {root_sql}"
