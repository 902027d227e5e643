"""Check an aggregate-mode query position by position and plan its blocks.

An *anonymising block* is a SELECT that aggregates rows of the datasets, or
the rows of a *per-entity block* (a WITH query grouped by the entity, whose
rows are never shown themselves). For each, the plan (:class:`.derive.Block`)
lists its group keys and conditions (:mod:`.terms`), the entity kinds it
reads, and its aggregates as expressions over base aggregates (:mod:`.derive`).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from query_guard.anonymise.derive import PER_ENTITY, Block, derive
from query_guard.anonymise.positions import POSITIONS
from query_guard.anonymise.terms import (
    Refused,
    bare,
    canonical,
    check_bucket,
    check_condition,
    conjuncts,
    linear,
    refuse,
    shown,
)
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
)
from query_guard.rules.shared_scopes import scopes


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
        # Only equalities every joined row meets: one inside an OR equates nothing.
        on = join.args.get("on")
        for eq in (c for c in (conjuncts(on) if on else []) if isinstance(c, exp.EQ)):
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
        raise refuse(ctx, "relation", "rows of one entity each (aggregate them again)")
    where = query.args.get("where")
    for atom in conjuncts(where.this) if where else []:
        check_condition(atom, scope, ctx)
    entity = None
    for key in group_keys(query):
        entity = entity or _entity_key(key, scope, ctx)
        if _entity_key(key, scope, ctx) is None:
            check_bucket(key, scope, ctx)
    for agg in own_aggregates(query):
        if type(agg) not in POSITIONS["per-entity aggregate"].allowed:
            raise refuse(ctx, "per-entity aggregate", f"{agg.sql_name().lower()}()")
        if agg.find(exp.Subquery, exp.Select, exp.Window):
            raise refuse(ctx, "aggregate argument", "a subquery or window")
        if agg.this is not None and not isinstance(agg.this, exp.Star):
            linear(agg.this, ctx)
    assert entity is not None  # groups_by_entity found it
    return entity


def _windows_over_rows(scope: Scope, ctx: GuardContext) -> None:
    query = scope.expression
    if not isinstance(query, exp.Select) or is_aggregating(query):
        return
    for window in query.find_all(exp.Window):
        if window.find_ancestor(exp.Select) is query:
            raise refuse(ctx, "window over rows", shown(window))


def plan_block(scope: Scope, ctx: GuardContext) -> Block:
    """Check one anonymising block position by position and plan it (or raise Refused)."""
    query = scope.expression
    datasets: dict[str, str] = {}
    keyed_by: set[str] = set()
    inner: dict[str, tuple[exp.Select, str]] = {}
    defined: dict[tuple[str, str], str] = {}
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
            own = {a: t.name for a, (_, t) in source.selected_sources.items()}
            for projection in source.expression.expressions:
                text = canonical(projection.unalias(), own)
                defined[(alias, projection.alias_or_name)] = text
        else:
            raise refuse(
                ctx, "relation", f"{alias} (a WITH query or subquery read beside a dataset)"
            )
    where = query.args.get("where")
    # A condition written twice is one condition (and one noise layer): each alone would
    # leave out no one, and dropping both would show what its layer adds.
    atoms = conjuncts(where.this) if where else []
    unique = {canonical(a, datasets, defined): a for a in reversed(atoms)}
    atoms = list(reversed(unique.values()))
    for part in ("where", "group"):
        node = query.args.get(part)
        if node is not None and node.find(exp.Subquery, exp.Select):
            raise refuse(ctx, "condition", "a subquery")
    for atom in atoms:
        check_condition(atom, scope, ctx)
    keys = group_keys(query)
    for key in keys:
        check_bucket(key, scope, ctx)
    block = Block(
        select=query,
        datasets=datasets,
        kinds=[] if inner else _kinds(query, datasets, ctx),
        keys=keys,
        key_texts=[canonical(k, datasets, defined) for k in keys],
        atoms=atoms,
        conditions=list(reversed(unique)),
        keyed_by=tuple(sorted(keyed_by)),
        inner=inner,
        defined=defined,
    )
    if inner:
        block.kinds = [[(alias, PER_ENTITY) for alias in inner]]
    for agg in own_aggregates(query):
        if agg.find(exp.Subquery, exp.Select, exp.Window):
            raise refuse(ctx, "aggregate argument", "a subquery or window")
        holder = agg.parent if isinstance(agg.parent, exp.WithinGroup) else agg
        block.derived[id(holder)] = derive(agg, block, scope, ctx)
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
                raise refuse(ctx, "relation", "a WITH query or subquery that does not aggregate")
    except Refused as refused:
        return [refused.finding]
    return []
