"""QG-102: every aggregate group covers at least ``disclosure.min_group_size`` entities.

Each aggregating block gets ``HAVING COUNT(DISTINCT entity) >= k`` for the
entity column of every relation it reads, so groups smaller than k are
suppressed rather than shown. Blocks that group by the entity itself are
per-entity pre-aggregations and are exempt; the block aggregating them is
not. A block over another aggregating block needs nothing more: each of its
groups is a union of groups that already cover k entities. Where an
aggregate reads a WITH query or derived table that does not pass the entity
through, the entity column is added to that query's outputs (as
``__qg_entity_n``); where that cannot be done without changing its rows
(DISTINCT, set operations), the query is refused.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.context import GuardContext
from query_guard.findings import Finding
from query_guard.lineage import (
    column_origins,
    group_keys,
    groups_by_entity,
    is_aggregating,
    scopes,
)

RULE = "QG-102"
ENTITY_ALIAS = "__qg_entity_"


def _is_entity(column: exp.Expression, scope: Scope, ctx: GuardContext) -> bool:
    return isinstance(column, exp.Column) and any(
        ctx.entity(d) == c for d, c in column_origins(column, scope)
    )


def _inject(query: exp.Select, columns: list[exp.Column]) -> list[str]:
    names = []
    taken = set(query.named_selects)
    for column in columns:
        name = next(
            f"{ENTITY_ALIAS}{i}" for i in range(len(taken) + 1) if f"{ENTITY_ALIAS}{i}" not in taken
        )
        taken.add(name)
        query.select(exp.alias_(column.copy(), name, quoted=True), copy=False)
        names.append(name)
    return names


def _entity_outputs(scope: Scope, ctx: GuardContext) -> list[str] | None:
    """Outputs of a block that carry an entity; ``[]`` if it is already k-protected,
    ``None`` if the entity cannot be passed through without changing its rows."""
    query = scope.expression
    if isinstance(query, exp.SetOperation):
        branches = [_entity_outputs(b, ctx) for b in scope.set_operation_scopes]
        return [] if all(b == [] for b in branches) else None
    per_entity = groups_by_entity(scope, ctx)
    if is_aggregating(query) and not per_entity:
        return []
    existing = [p.alias_or_name for p in query.expressions if _is_entity(p.unalias(), scope, ctx)]
    if existing:
        return existing
    if per_entity:
        keys = [k for k in group_keys(query) if _is_entity(k, scope, ctx)]
        return _inject(query, keys[:1])
    if is_aggregating(query) or query.args.get("distinct"):
        return None
    columns: list[exp.Column] = []
    for alias, (_, source) in scope.selected_sources.items():
        found = _entity_columns(alias, source, ctx)
        if found is None:
            return None
        columns.extend(found)
    return _inject(query, columns)


def _entity_columns(
    alias: str, source: exp.Table | Scope, ctx: GuardContext
) -> list[exp.Column] | None:
    if isinstance(source, exp.Table):
        entity = ctx.entity(source.name)
        return [exp.column(entity, table=alias, quoted=True)] if entity else []
    names = _entity_outputs(source, ctx)
    return None if names is None else [exp.column(n, table=alias, quoted=True) for n in names]


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = condition.unnest()
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _require(query: exp.Select, conditions: list[exp.Expression]) -> bool:
    """Add the conditions to HAVING unless present; return whether anything changed."""
    having = query.args.get("having")
    present = {c.sql("duckdb") for c in _conjuncts(having.this)} if having else set()
    missing = [c for c in conditions if c.sql("duckdb") not in present]
    if not missing:
        return False
    combined = exp.and_(*missing, *([exp.paren(having.this)] if having else []), copy=False)
    query.set("having", exp.Having(this=combined))
    return True


def rewrite(expr: exp.Expression, ctx: GuardContext) -> tuple[exp.Expression, list[Finding]]:
    if ctx.mode != "aggregate":
        return expr, []
    k = ctx.agreement.disclosure.min_group_size
    article = ctx.clause("disclosure.min_group_size")
    tree = expr.copy()
    changed = False
    for scope in scopes(tree):
        query = scope.expression
        if not isinstance(query, exp.Select) or not is_aggregating(query):
            continue
        if groups_by_entity(scope, ctx):
            continue
        keys: list[exp.Column] = []
        for alias, (_, source) in scope.selected_sources.items():
            found = _entity_columns(alias, source, ctx)
            if found is None:
                return expr, [
                    Finding(
                        RULE,
                        f"cannot check that each group covers at least {k} entities: a WITH "
                        "query or subquery in FROM uses DISTINCT or UNION/EXCEPT/INTERSECT without "
                        "passing the entity column through; pass it through or aggregate there",
                        article,
                    )
                ]
            keys.extend(found)
        counts: list[exp.Expression] = [
            exp.Count(this=exp.Distinct(expressions=[key])) for key in keys
        ] or [exp.Count(this=exp.Star())]
        conditions = [exp.GTE(this=c, expression=exp.Literal.number(k)) for c in counts]
        changed |= _require(query, conditions)
    if not changed:
        return tree, []
    return tree, [
        Finding(
            RULE,
            f"groups covering fewer than {k} distinct entities are "
            "suppressed (HAVING COUNT(DISTINCT entity) >= "
            f"{k})",
            article,
            action="rewrite",
        )
    ]
