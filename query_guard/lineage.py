"""Where the values of a qualified query come from, scope by scope.

Rules ask two questions of a column reference: which base columns
(dataset, column) can its value carry, and in which kind of query block does
it appear. Both are answered from sqlglot's scopes over the qualified tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, ScopeType, traverse_scope

Origin = tuple[str, str]  # (dataset, column)


def scopes(tree: exp.Expression) -> list[Scope]:
    """Every query block of a qualified tree, innermost first."""
    return list(traverse_scope(tree))


def select_scopes(tree: exp.Expression) -> Iterator[Scope]:
    return (s for s in scopes(tree) if isinstance(s.expression, exp.Select))


def relation_kind(scope: Scope) -> ScopeType:
    """The role of a block, looking through set-operation branches to the set operation."""
    while scope.scope_type == ScopeType.SET_OPERATION and scope.parent is not None:
        scope = scope.parent
    return scope.scope_type


def is_output(scope: Scope) -> bool:
    """Whether this block's rows are the query's result."""
    return relation_kind(scope) == ScopeType.ROOT


def is_inner_relation(scope: Scope) -> bool:
    """A CTE or derived table: its rows feed another block, never the result directly."""
    return relation_kind(scope) in (ScopeType.CTE, ScopeType.DERIVED_TABLE)


def _own(node: exp.Expression, select: exp.Expression) -> bool:
    """Whether ``node`` belongs to ``select`` itself rather than to a nested query."""
    return node.find_ancestor(exp.Select, exp.SetOperation) is select


def own_aggregates(select: exp.Select) -> list[exp.AggFunc]:
    """Aggregate calls of this block (not of nested queries, not window functions)."""
    return [
        a
        for a in select.find_all(exp.AggFunc)
        if _own(a, select) and not isinstance(a.parent, exp.Window)
    ]


def is_aggregating(select: exp.Select) -> bool:
    return bool(select.args.get("group")) or bool(own_aggregates(select))


def group_keys(select: exp.Select) -> list[exp.Expression]:
    """GROUP BY expressions; with GROUP BY ALL, every projection without an aggregate."""
    group = select.args.get("group")
    if not group:
        return []
    if group.args.get("all"):
        return [
            p.unalias()
            for p in select.expressions
            if not any(_own(a, select) for a in p.find_all(exp.AggFunc))
        ]
    return list(group.expressions)


def in_count_distinct(column: exp.Column) -> bool:
    """``COUNT(DISTINCT column)`` with the column as the only argument."""
    parent = column.parent
    return (
        isinstance(parent, exp.Distinct)
        and len(parent.expressions) == 1
        and isinstance(parent.parent, exp.Count)
        and not isinstance(parent.parent.parent, exp.Window)
    )


def column_origins(column: exp.Column, scope: Scope) -> frozenset[Origin]:
    """Base columns whose values a column reference can carry (empty if unresolvable)."""
    source = scope.sources.get(column.table)
    if isinstance(source, exp.Table):
        return frozenset({(source.name, column.name)})
    if isinstance(source, Scope):
        return output_origins(source, column.name)
    return frozenset()


def output_origins(scope: Scope, name: str) -> frozenset[Origin]:
    """Base columns an output column of a block can carry."""
    query = scope.expression
    if isinstance(query, exp.SetOperation):
        names = query.named_selects
        if name not in names:
            return frozenset()
        position = names.index(name)
        found: set[Origin] = set()
        for branch in scope.set_operation_scopes:
            branch_names = branch.expression.named_selects
            if position < len(branch_names):
                found |= output_origins(branch, branch_names[position])
        return frozenset(found)
    for projection in query.expressions:
        if projection.alias_or_name == name:
            return expression_origins(projection.unalias(), scope)
    return frozenset()


def expression_origins(expression: exp.Expression, scope: Scope) -> frozenset[Origin]:
    """Base columns whose values an expression can carry; ``COUNT(DISTINCT c)`` carries none."""
    found: set[Origin] = set()
    for column in expression.find_all(exp.Column):
        if _own(column, scope.expression) and not in_count_distinct(column):
            found |= column_origins(column, scope)
    return frozenset(found)


def own_columns(scope: Scope) -> list[exp.Column]:
    """Column references of this block, excluding nested blocks and ORDER BY alias references."""
    return [c for c in scope.columns if _own(c, scope.expression)]


def passthrough_origin(column: exp.Column, scope: Scope) -> Origin | None:
    """The base column a reference carries unchanged (through bare projections), if any."""
    source = scope.sources.get(column.table)
    if isinstance(source, exp.Table):
        return (source.name, column.name)
    if isinstance(source, Scope) and isinstance(source.expression, exp.Select):
        for projection in source.expression.expressions:
            if projection.alias_or_name == column.name:
                inner = projection.unalias()
                return passthrough_origin(inner, source) if isinstance(inner, exp.Column) else None
    return None


def groups_by_entity(scope: Scope, ctx: object) -> bool:
    """Whether the block groups by an entity column, so that each group is one entity.

    ``ctx`` is a GuardContext (only its ``entity(dataset)`` is used).
    """
    entity_of: Callable[[str], str | None] = ctx.entity  # type: ignore[attr-defined]
    query = scope.expression
    if not isinstance(query, exp.Select):
        return False
    return any(
        entity_of(dataset) == column
        for key in group_keys(query)
        if isinstance(key, exp.Column)
        for dataset, column in column_origins(key, scope)
    )
