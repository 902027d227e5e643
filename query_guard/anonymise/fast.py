"""Aggregate mode's fast path: buckets so large that no one entity can matter.

Let M be the most rows any one entity has among the block's rows: a dataset's
own bound is counted when the database is built
(:data:`query_guard.compile.SOURCES_TABLE`), and inner joins on the entity
multiply the tables' bounds (:func:`_most_rows`). A bucket whose
every value has at least M·T contributing rows, T = k + 3·threshold_sd being
the highest the noisy threshold can be, has at least T contributing entities;
and no entity brings more than M rows, M·max|x| to a sum, or M·(max|x| + |mean|)²
to a spread's squares about the mean (computed in the same pass as Σx² − (Σx)²/n
where that keeps enough digits). Where that bound
is also at most :data:`SHARE` of the value, no entity can dominate it, so the
value needs no flattening: it is perturbed by noise scaled to the bound — as
much as any one entity could contribute — and seeded by the contributing
rows' entities (:data:`~query_guard.compile.CONTRIBUTOR_SEED` summed: a narrow
column DuckDB adds up without overflow checks). Such a bucket needs one pass over
its rows, where the exact
way (:mod:`.emit`) groups them by entity.

A condition of the WHERE that leaves out at least M·T rows of a bucket is kept
there. A bucket where a condition leaves out fewer, none included, goes the exact
way (which drops a low-effect condition by counting entities), as does every
bucket the bound does not settle: were a condition that leaves out no one
settled here and one that leaves out a single entity not, the time a query took
would tell whether that entity meets the condition. Which way a bucket goes
depends only on its own rows, so it answers alike on every asking; the
approximation only ever counts fewer entities and bounds contributions from
above (``tests/query_guard/test_anonymise.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from query_guard.anonymise.derive import (
    ENTITIES,
    ROWS,
    SQUARES,
    SUM,
    VALUES,
    Block,
    value_column,
)
from query_guard.anonymise.failsafe import fails_sql, holds_sql
from query_guard.anonymise.names import literal, q, static
from query_guard.anonymise.noise import FAST_FUNCTION, TRUNCATE
from query_guard.compile import (
    CONTRIBUTOR,
    CONTRIBUTOR_SEED,
    PRIVATE_SCHEMA,
    SEED_MODULUS,
    SOURCES_TABLE,
)
from query_guard.context import GuardContext
from query_guard.lineage import group_keys

#: The most of a value one entity's bound may be for the fast path (1%).
SHARE = 0.01
#: The least share of Σx² that the squares about the mean may be for one pass to compute
#: them as Σx² − (Σx)²/n: DOUBLE keeps about 16 digits, and this keeps at least 8.
CANCELLATION = 1e-8


def seed_sql(entity: str) -> str:
    """A row's share of its bucket's seed, from the SQL naming its entity: the stored
    :data:`~query_guard.compile.CONTRIBUTOR_SEED` beside a stored contributor, else the
    entity hashed the same way."""
    stored = f".{q(CONTRIBUTOR)}"
    if entity.endswith(stored):
        return entity.removesuffix(stored) + f".{q(CONTRIBUTOR_SEED)}"
    return f"CAST(hash({entity}) % {SEED_MODULUS} + 1 AS BIGINT)"


def eligible(block: Block) -> bool:
    """One kind of entity over rows that repeat an entity a bounded number of times (one
    dataset, one per-entity block, or inner joins: :func:`_most_rows`), and only counts
    (of rows or of distinct entities), sums and spreads: a quantile needs each entity's
    own value."""
    inner_joins = all(
        not j.side and (j.kind or "INNER").upper() == "INNER"
        for j in block.select.args.get("joins") or []
    )
    return (
        len(block.kinds) == 1
        and (len(block.datasets) == 1 or inner_joins)
        and all(b.kind in (ROWS, VALUES, SUM, SQUARES, ENTITIES) for b in block.bases)
    )


def _max_rows(dataset: str) -> str:
    sources = f"{q(PRIVATE_SCHEMA)}.{q(SOURCES_TABLE)}"
    return f"(SELECT max_rows FROM {sources} WHERE dataset = {literal(dataset)})"


def _most_rows(block: Block) -> str:
    """The most rows one entity can have among the block's rows (NULL, so the exact way,
    where nothing bounds it).

    A dataset's own bound is counted when it is built. Inner joins in a block with one
    kind of entity equate every table's entity (a table without one has no bound), so an
    entity's joined rows are the product of its rows in each table. A per-entity block has
    one row per entity when grouped by the entity alone, else at most as many as the
    entity has rows in the one dataset it reads.
    """
    if not block.inner:
        return " * ".join(_max_rows(d) for d in block.datasets.values())
    [(inner, _)] = block.inner.values()
    if len(group_keys(inner)) == 1:
        return "1"
    tables = list(inner.find_all(exp.Table))
    nested = any(s is not inner for s in inner.find_all(exp.Select))
    return _max_rows(tables[0].name) if len(tables) == 1 and not nested else "NULL"


class _Stats:
    """The per-bucket statistics of one pass, each computed once however many bases ask
    for it."""

    def __init__(self) -> None:
        self.columns: dict[str, str] = {}

    def of(self, aggregate: str, *conditions: str) -> str:
        """The column holding ``aggregate`` over the rows meeting ``conditions``."""
        where = " AND ".join(c for c in conditions if c)
        text = f"{aggregate} FILTER (WHERE {where})" if where else aggregate
        if text not in self.columns:
            self.columns[text] = q(f"__qg_f{len(self.columns)}")
        return self.columns[text]


@dataclass(frozen=True)
class _Pass:
    """What one pass says of a base in a bucket: whether it has enough contributing
    entities (None where the dominance test implies it), its total, the most one entity
    can bring to it, its contributors' seed, and any test that the pass's own arithmetic
    is sound."""

    enough: str | None
    total: str
    bound: str
    seeds: str
    sound: tuple[str, ...] = ()


def _base_stats(block: Block, j: int, stats: _Stats, most: str, top: float) -> _Pass:
    """Base ``j`` over the bucket's rows (those its conditions keep).

    The seed sums :data:`~query_guard.compile.CONTRIBUTOR_SEED` over the bucket's rows, one
    aggregate for every base: a row whose value is NULL or zero contributes nothing, and
    naming it too only makes the seed name a few more rows of the same bucket (a filter per
    base cost DuckDB a third of the user's own query). Where the base's kind fixes a
    statistic (a count's largest contribution is 1, its total its rows) it is that, not
    another aggregate. For sums and spreads the contributors need no count of their own when
    ``implied``: no entity brings more than the bound, so a total of which the bound is at
    most :data:`SHARE` has at least 1/SHARE contributing entities, and the threshold is no
    higher than that. A count of distinct entities is counted exactly, each bringing one.
    ``most`` is the SQL of M, the most rows of one entity, and ``top`` the highest the
    noisy threshold can be.
    """
    base, implied = block.bases[j], top <= 1 / SHARE
    seeds = stats.of(f"sum({q('__qg_s0')})")
    if base.kind == ENTITIES:
        n = stats.of(f"count(DISTINCT {q(f'__qg_e{base.owner}')})")
        return _Pass(f"{n} >= {top!r}", f"CAST({n} AS DOUBLE)", "1", seeds)
    if base.kind == ROWS:
        rows = stats.of("count(*)")
        return _Pass(f"{rows} >= {most} * {top!r}", f"CAST({rows} AS DOUBLE)", most, seeds)
    a = q(f"__qg_a{j}")
    if base.kind == VALUES:
        rows = stats.of(f"count({a})")
        return _Pass(f"{rows} >= {most} * {top!r}", f"CAST({rows} AS DOUBLE)", most, seeds)
    if base.kind == SQUARES:
        return _squares(a, stats, seeds, implied, most)
    return _Pass(
        None if implied else f"{stats.of('count(*)', f'{a} <> 0')} >= {most} * {top!r}",
        f"CAST({stats.of(f'sum({a})')} AS DOUBLE)",
        f"{most} * {stats.of(f'max(abs({a}))')}",
        seeds,
    )


def _squares(a: str, stats: _Stats, seeds: str, implied: bool, most: str) -> _Pass:
    """Squares about the bucket's mean from one pass: Σx² − (Σx)²/n. One row's square
    about the mean is at most (max|x| + |mean|)², the bound the dominance test and the
    noise use. Where the subtraction would cancel most of the digits (a mean far larger
    than the spread) the bucket goes the exact way, which centres each row first."""
    n = stats.of(f"count({a})")
    total, squares = stats.of(f"sum({a})"), stats.of(f"sum({a} * {a})")
    largest = stats.of(f"max(abs({a}))")
    centred = f"({squares} - {total} * {total} / {n})"
    # Rows off the mean cannot be counted in the pass that finds the mean: without the
    # implication the bucket goes the exact way (no rows counted, none enough).
    return _Pass(
        None if implied else "false",
        centred,
        f"{most} * power({largest} + abs({total} / {n}), 2)",
        seeds,
        (f"{n} > 0", f"{centred} >= {CANCELLATION!r} * {squares}"),
    )


def _same(g: list[str], left: str, right: str) -> str:
    """The join condition of two relations holding the same bucket keys."""
    return " AND ".join(f"{left}.{c} IS NOT DISTINCT FROM {right}.{c}" for c in g) or "true"


def _buckets(g: list[str], kept: str, n: int, m: int) -> str:
    """Every bucket with its statistics over the rows its conditions keep (the relation
    ``kept``) and the count each condition alone leaves out.

    A bucket is there when a row meets every condition, or every condition but one (which
    low effect may drop there): also one whose rows the conditions all leave out goes the
    exact way, so that whether such a bucket exists (suppressed or not) does not depend
    on how its rows meet the conditions. Without keys there is one bucket, which a
    grouping without keys always returns."""
    if not m:
        return f"(SELECT * FROM {kept})"
    scans = [q(f"__qg_fx{n}_{i}") for i in range(m)]
    if g:
        keys = ", ".join(g)
        every = " UNION ".join(f"SELECT {keys} FROM {r}" for r in [kept, *scans])
    else:
        every = "SELECT 1"
    joins = [f"LEFT JOIN {kept} AS s ON {_same(g, 'b', 's')}"]
    columns = [f"b.{c}" for c in g]
    columns.append(f"s.* EXCLUDE ({', '.join(g)})" if g else "s.*")
    for i, scan in enumerate(scans):
        x = q(f"__qg_fx{i}")
        joins.append(f"LEFT JOIN {scan} ON {_same(g, 'b', scan)}")
        columns.append(f"coalesce({scan}.{x}, 0) AS {x}")
    return f"(SELECT {', '.join(columns)} FROM ({every}) AS b {' '.join(joins)})"


def ctes(
    block: Block,
    ctx: GuardContext,
    rows: tuple[str, str],
    n: int,
    gated: Callable[[str], str] | None = None,
) -> tuple[list[str], str, str]:
    """The WITH entries of the fast path over ``rows`` (the name of the block's rows and
    the SELECT that makes them): (entries, its anonymised buckets, the rows of the buckets
    left to the exact way). ``gated`` makes the block's rows read only where a condition
    holds: for a join, the exact way reads those, gated on any bucket's going that way
    (``emit._gated``)."""
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    m = len(block.atoms)
    source, rows_select = rows
    holds = [holds_sql(atom, block, ctx) for atom in block.atoms]
    stats = _Stats()
    fr = stats.of("count(*)")
    m_rows = q("__qg_m")  # read once per bucket in the stats' entry (one subquery, not eight)
    d = ctx.agreement.disclosure
    top = d.min_group_size + TRUNCATE * d.threshold_sd
    bases = [_base_stats(block, j, stats, m_rows, top) for j in range(len(block.bases))]
    grouping = f" GROUP BY {', '.join(g)}" if g else ""
    # The rows each condition alone leaves out, counted in a scan of their own: a WHERE
    # DuckDB prunes by, where flags in one pass would make it read and test every row.
    excluded, scans = [], []
    for i, atom in enumerate(block.atoms):
        name, x = f"__qg_fx{n}_{i}", q(f"__qg_fx{i}")
        where = " AND ".join([*(f"({h})" for o, h in enumerate(holds) if o != i)])
        where = " AND ".join(w for w in (where, f"({fails_sql(atom, block, ctx)})") if w)
        scans.append(
            f"{q(name)} AS (SELECT {', '.join([*g, f'count(*) AS {x}'])} "
            f"FROM ({rows_select} WHERE {where}){grouping})"
        )
        excluded.append(x)
    bound = f"{m_rows} * {top!r}"
    settled = [f"{fr} >= {bound}"]
    for base in bases:
        settled += [base.enough] if base.enough else []
        settled += [f"{base.bound} <= {SHARE!r} * abs({base.total})", *base.sound]
    settled += [f"{x} >= {bound}" for x in excluded]
    stats_name, fast_name, rest = (f"__qg_{w}{n}" for w in ("fstats", "fast", "rest"))
    # Decided once per bucket, each test once (a test written twice, or the decision read
    # by both ways, cost DuckDB's planner time on every query).
    decided = f"coalesce({' AND '.join(dict.fromkeys(settled))}, false) AS {q('__qg_ok')}"
    values = f"[{', '.join(f'CAST({c} AS VARCHAR)' for c in g)}]::VARCHAR[]"
    kept = "[" + ", ".join("true" for _ in excluded) + "]::BOOLEAN[]"  # every condition
    cols = [*g, f"true AS {q('__qg_keep')}"]
    for j, (base, one) in enumerate(zip(block.bases, bases, strict=True)):
        described = literal(static(block, ctx, base.canonical))
        seeds = f"CAST({one.seeds} AS UBIGINT)"
        noise = f"{FAST_FUNCTION}({described}, {values}, {kept}, {seeds}, {one.bound})"
        cols.append(f"{one.total} + {noise} AS {q(value_column(j))}")
    computed = [f"{text} AS {name}" for text, name in stats.columns.items()]
    on = _same(g, "r", "s")
    left = f"(SELECT {', '.join(g) or '1 AS one'} FROM {q(stats_name)} WHERE NOT {q('__qg_ok')})"
    every = f" WHERE {' AND '.join(f'({h})' for h in holds)}" if holds else ""
    kept = q(f"__qg_fkept{n}")
    kept_rows = f"SELECT {', '.join([*g, *computed])} FROM ({rows_select}{every}){grouping}"
    unsettled = f"(SELECT bool_or(NOT {q('__qg_ok')}) FROM {q(stats_name)})"
    rest_rows = f"({gated(unsettled)})" if gated else q(source)
    # Both stored: each is read several times, and inlined DuckDB computed a count of
    # distinct entities once per reader.
    return (
        [
            *scans,
            f"{kept} AS MATERIALIZED ({kept_rows})",
            f"{q(stats_name)} AS MATERIALIZED (SELECT *, {decided} FROM (SELECT *, "
            f"{_most_rows(block)} AS {m_rows} FROM {_buckets(g, kept, n, m)}))",
            f"{q(fast_name)} AS (SELECT {', '.join(cols)} FROM {q(stats_name)} "
            f"WHERE {q('__qg_ok')})",
            f"{q(rest)} AS (SELECT r.* FROM {rest_rows} AS r SEMI JOIN {left} AS s ON {on})",
        ],
        fast_name,
        rest,
    )
