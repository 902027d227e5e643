"""Aggregate mode's fast path: buckets so large that no one entity can matter.

Let M be the most rows any one entity has in the dataset (counted when the
database is built, :data:`query_guard.compile.SOURCES_TABLE`). A bucket whose
every value has at least M·T contributing rows, T = k + 3·threshold_sd being
the highest the noisy threshold can be, has at least T contributing entities;
and no entity brings more than M rows, or M·max|x| to a sum. Where that bound
is also at most :data:`SHARE` of the value, no entity can dominate it, so the
value needs no flattening: it is perturbed by noise scaled to the bound — as
much as any one entity could contribute — and seeded by the contributing
rows' entities. Such a bucket needs one pass over its rows, where the exact
way (:mod:`.emit`) groups them by entity.

A condition of the WHERE that leaves out no row of a bucket is dropped there,
as low-effect detection does; one that leaves out at least M·T rows is kept.
Anything between, and every bucket the bound does not settle, goes the exact
way. Which way a bucket goes depends only on its own rows, so it answers alike
on every asking; the approximation only ever counts fewer entities and bounds
contributions from above (``tests/query_guard/test_anonymise.py`` checks both).
"""

from __future__ import annotations

from query_guard.anonymise.derive import ROWS, SUM, VALUES, Block, value_column
from query_guard.anonymise.names import flag, literal, q, static
from query_guard.anonymise.noise import FAST_FUNCTION, TRUNCATE
from query_guard.compile import PRIVATE_SCHEMA, SOURCES_TABLE
from query_guard.context import GuardContext

#: The most of a value one entity's bound may be for the fast path (1%).
SHARE = 0.01


def eligible(block: Block) -> bool:
    """One dataset (or one per-entity block), one kind of entity, and only counts and
    sums: joins can repeat an entity's rows, and quantiles and spreads need each
    entity's own values."""
    return (
        len(block.datasets) == 1
        and len(block.kinds) == 1
        and all(b.kind in (ROWS, VALUES, SUM) for b in block.bases)
    )


def _most_rows(block: Block) -> str:
    if block.inner:
        return "1"  # a per-entity block has one row per entity
    [dataset] = block.datasets.values()
    sources = f"{q(PRIVATE_SCHEMA)}.{q(SOURCES_TABLE)}"
    return f"(SELECT max_rows FROM {sources} WHERE dataset = {literal(dataset)})"


def _contribution(block: Block, j: int) -> str:
    """One row's contribution to base ``j``."""
    kind = block.bases[j].kind
    if kind == ROWS:
        return "1"
    a = q(f"__qg_a{j}")
    return f"CAST({a} IS NOT NULL AS INTEGER)" if kind == VALUES else a


def ctes(block: Block, ctx: GuardContext, source: str, n: int) -> tuple[list[str], str, str]:
    """The WITH entries of the fast path: (entries, its anonymised buckets, the rows of
    the buckets left to the exact way)."""
    d = ctx.agreement.disclosure
    most = d.min_group_size + TRUNCATE * d.threshold_sd
    g = [q(f"__qg_g{i}") for i in range(len(block.keys))]
    m = len(block.atoms)
    every = " AND ".join(flag(i) for i in range(m)) or "true"
    e = q("__qg_e0")
    stats = [
        f"count(*) FILTER (WHERE {every}) AS {q('__qg_fr')}",
    ]
    for j in range(len(block.bases)):
        c = _contribution(block, j)
        stats += [
            f"count(*) FILTER (WHERE {every} AND {c} <> 0) AS {q(f'__qg_fn{j}')}",
            f"CAST(sum({c}) FILTER (WHERE {every}) AS DOUBLE) AS {q(f'__qg_ft{j}')}",
            f"max(abs({c})) FILTER (WHERE {every}) AS {q(f'__qg_fm{j}')}",
            f"CAST(sum(hash({e})) FILTER (WHERE {every} AND {c} <> 0) % 18446744073709551616 "
            f"AS UBIGINT) AS {q(f'__qg_fh{j}')}",
        ]
    for i in range(m):
        only = " AND ".join([*(flag(o) for o in range(m) if o != i), f"NOT {flag(i)}"])
        stats.append(f"count(*) FILTER (WHERE {only}) AS {q(f'__qg_fx{i}')}")
    grouping = f" GROUP BY {', '.join(g)}" if g else ""
    bound = f"{_most_rows(block)} * {most!r}"
    settled = [f"{q('__qg_fr')} >= {bound}"]
    for j in range(len(block.bases)):
        settled += [
            f"{q(f'__qg_fn{j}')} >= {bound}",
            f"{_most_rows(block)} * {q(f'__qg_fm{j}')} <= {SHARE!r} * abs({q(f'__qg_ft{j}')})",
        ]
    settled += [f"({q(f'__qg_fx{i}')} = 0 OR {q(f'__qg_fx{i}')} >= {bound})" for i in range(m)]
    stats_name, fast_name, rest = (f"__qg_{w}{n}" for w in ("fstats", "fast", "rest"))
    decided = f"coalesce({' AND '.join(settled)}, false)"
    values = f"[{', '.join(f'CAST({c} AS VARCHAR)' for c in g)}]::VARCHAR[]"
    kept = "[" + ", ".join(f"{q(f'__qg_fx{i}')} > 0" for i in range(m)) + "]::BOOLEAN[]"
    cols = [*g, f"true AS {q('__qg_keep')}"]
    for j, base in enumerate(block.bases):
        described = literal(static(block, ctx, base.canonical))
        scale = f"{_most_rows(block)} * {q(f'__qg_fm{j}')}"
        noise = f"{FAST_FUNCTION}({described}, {values}, {kept}, {q(f'__qg_fh{j}')}, {scale})"
        cols.append(f"{q(f'__qg_ft{j}')} + {noise} AS {q(value_column(j))}")
    on = " AND ".join(f"r.{c} IS NOT DISTINCT FROM s.{c}" for c in g) or "true"
    left = f"(SELECT {', '.join(g) or '1 AS one'} FROM {q(stats_name)} WHERE NOT {decided})"
    return (
        [
            f"{q(stats_name)} AS (SELECT {', '.join([*g, *stats])} FROM {q(source)}{grouping})",
            f"{q(fast_name)} AS (SELECT {', '.join(cols)} FROM {q(stats_name)} WHERE {decided})",
            f"{q(rest)} AS (SELECT r.* FROM {q(source)} AS r SEMI JOIN {left} AS s ON {on})",
        ],
        fast_name,
        rest,
    )
