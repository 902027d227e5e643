"""Turn the text of a DP query into a plan, or refuse it before anything is charged.

Only one shape is released with differential privacy::

    SELECT k1[, k2], AGG(...) [AS alias], ... FROM dataset [WHERE predicate]
    [GROUP BY k1[, k2]]

with ``AGG`` one of ``COUNT(*)``, ``COUNT(DISTINCT column)``, ``SUM(column)``
and ``AVG(column)``. Everything else is refused with rule ``dp-unsupported``
from the query text alone, so a refusal never costs budget (ARCHITECTURE
"Differential privacy, precisely"). The SQL is read only through sqlglot's AST.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from query_guard.compile import has_contribution_rank
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, Sensitivity
from sandbox.contracts.validation import PREDICATE_NODES
from sandbox.errors import PolicyViolation

UNSUPPORTED = "dp-unsupported"
OUT_OF_SCOPE = "dp-out-of-scope"
NO_BOUNDS = "dp-no-bounds"
NO_PRIVACY_UNIT = "dp-no-privacy-unit"
_CLAUSE = "agreement clause privacy"
_SHAPE = (
    "a DP release is SELECT of 0-2 group keys and COUNT(*), COUNT(DISTINCT column), "
    "SUM(column) or AVG(column) FROM one dataset, with an optional WHERE and GROUP BY"
)
MAX_GROUP_KEYS = 2
_NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL")


AggregateKind = Literal["count", "count_distinct", "sum", "avg"]


@dataclass(frozen=True)
class Aggregate:
    """One aggregate of the plan; ``column`` is None for ``COUNT(*)``."""

    kind: AggregateKind
    column: str | None
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class Output:
    """One output column: a group key (``key``) or an aggregate (``aggregate``)."""

    name: str
    key: str | None = None
    aggregate: Aggregate | None = None


@dataclass(frozen=True)
class DpPlan:
    """What to compute and how, decided from the query text and the contracts only."""

    dataset: str
    entity: str | None
    group_keys: tuple[str, ...]
    #: Public values of each group key, or None when partitions must be selected.
    key_values: tuple[tuple[str | int, ...], ...] | None
    outputs: tuple[Output, ...]
    where: str | None

    @property
    def aggregates(self) -> tuple[Aggregate, ...]:
        return tuple(o.aggregate for o in self.outputs if o.aggregate is not None)


def _refuse(message: str, rule: str = UNSUPPORTED) -> PolicyViolation:
    return PolicyViolation(rule, _CLAUSE, message)


def _parse(sql: str) -> exp.Select:
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except SqlglotError as exc:
        raise _refuse(f"the query does not parse as SQL ({type(exc).__name__}); {_SHAPE}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        raise _refuse(f"exactly one SELECT statement is released at a time; {_SHAPE}")
    # Names as DuckDB and the guard resolve them, case-insensitively: ``GDP增速`` and
    # ``"GDP增速"`` are the catalogue's ``gdp增速`` (sandbox.contracts.names).
    return normalize_identifiers(statements[0], dialect="duckdb")


def _reject_extra_clauses(select: exp.Select) -> None:
    for arg in (
        "with",
        "joins",
        "having",
        "order",
        "limit",
        "offset",
        "distinct",
        "qualify",
        "windows",
        "laterals",
        "pivots",
        "sample",
        "into",
        "settings",
    ):
        if select.args.get(arg):
            raise _refuse(f"the clause {arg.upper()} is not supported; {_SHAPE}")
    for node in select.walk():
        if isinstance(node, exp.Window | exp.Subquery) or (
            isinstance(node, exp.Select) and node is not select
        ):
            raise _refuse(f"subqueries and window functions are not supported; {_SHAPE}")


def _dataset(
    select: exp.Select, agreement: Agreement, catalog: Mapping[str, CatalogEntry]
) -> CatalogEntry:
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.db or table.catalog:
        raise _refuse(f"the FROM clause must name one dataset of the agreement; {_SHAPE}")
    name = table.name
    if name not in agreement.datasets or name not in catalog:
        allowed = ", ".join(sorted(agreement.datasets))
        raise _refuse(f"dataset {name!r} is not in the agreement; allowed: {allowed}", OUT_OF_SCOPE)
    return catalog[name]


class _Columns:
    """The columns a DP query may name: the agreed ones, plus the entity for COUNT(DISTINCT)."""

    def __init__(self, agreement: Agreement, entry: CatalogEntry, table_alias: str):
        self.entry = entry
        self.allowed = list(agreement.datasets[entry.name].columns)
        self.table_names = {entry.name, table_alias}

    def resolve(self, node: exp.Expression, *, entity_ok: bool = False) -> str:
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            raise _refuse(f"expected a plain column name, got {type(node).__name__}; {_SHAPE}")
        if node.table and node.table not in self.table_names:
            raise _refuse(
                f"column qualifier {node.table!r} is not the queried dataset", OUT_OF_SCOPE
            )
        name = node.name
        if name in self.allowed or (entity_ok and name == self.entry.entity):
            return name
        raise _refuse(
            f"column {name!r} is not allowed by the agreement; allowed: {', '.join(self.allowed)}",
            OUT_OF_SCOPE,
        )


def _aggregate(node: exp.Expression, cols: _Columns) -> Aggregate:
    if isinstance(node, exp.Count):
        arg = node.this
        if isinstance(arg, exp.Star):
            return Aggregate("count", None)
        if isinstance(arg, exp.Distinct) and len(arg.expressions) == 1:
            return Aggregate("count_distinct", cols.resolve(arg.expressions[0], entity_ok=True))
        raise _refuse(f"COUNT is released as COUNT(*) or COUNT(DISTINCT column); {_SHAPE}")
    if isinstance(node, exp.Sum | exp.Avg):
        name = cols.resolve(node.this)
        column = cols.entry.column(name)
        if column.bounds is None or column.type not in _NUMERIC:
            raise _refuse(
                f"{type(node).__name__.upper()}({name}) needs a numeric column with public "
                "bounds in the catalogue, so one entity's influence is limited; "
                f"columns with bounds: {', '.join(_bounded(cols.entry)) or 'none'}",
                NO_BOUNDS,
            )
        return Aggregate("sum" if isinstance(node, exp.Sum) else "avg", name, column.bounds)
    raise _refuse(f"{type(node).__name__.upper()} is not a supported aggregate; {_SHAPE}")


def _bounded(entry: CatalogEntry) -> list[str]:
    return [c.name for c in entry.columns if c.bounds is not None]


def _group_keys(select: exp.Select, cols: _Columns) -> tuple[str, ...]:
    group = select.args.get("group")
    if group is None:
        return ()
    if group.args.get("rollup") or group.args.get("cube") or group.args.get("grouping_sets"):
        raise _refuse(f"ROLLUP, CUBE and GROUPING SETS are not supported; {_SHAPE}")
    keys = tuple(cols.resolve(k) for k in group.expressions)
    if len(keys) > MAX_GROUP_KEYS or len(set(keys)) != len(keys):
        raise _refuse(f"at most {MAX_GROUP_KEYS} distinct group keys; {_SHAPE}")
    for key in keys:
        if cols.entry.column(key).sensitivity == Sensitivity.identifier:
            raise _refuse(
                f"identifier column {key!r} cannot be a group key: identifiers are "
                "never released as values (Rizhao Art.29)",
                OUT_OF_SCOPE,
            )
    return keys


def _outputs(select: exp.Select, keys: tuple[str, ...], cols: _Columns) -> tuple[Output, ...]:
    outputs = []
    for item in select.expressions:
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Column):
            key = cols.resolve(node)
            if key not in keys:
                raise _refuse(f"column {key!r} is selected but not grouped by; {_SHAPE}")
            outputs.append(Output(item.alias_or_name, key=key))
        else:
            name = item.alias if isinstance(item, exp.Alias) else node.sql("duckdb").lower()
            outputs.append(Output(name, aggregate=_aggregate(node, cols)))
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise _refuse("output column names must be distinct; give each aggregate an alias")
    if not any(o.aggregate for o in outputs):
        raise _refuse(f"the query has no aggregate; {_SHAPE}")
    return tuple(outputs)


def _where(select: exp.Select, cols: _Columns) -> str | None:
    where = select.args.get("where")
    if where is None:
        return None
    predicate = where.this.copy()
    for node in predicate.walk():
        # A WHERE is a plain predicate: no subqueries, functions or aggregates.
        if not isinstance(node, PREDICATE_NODES):
            raise _refuse(
                f"{type(node).__name__} is not allowed in WHERE; use comparisons, IN, BETWEEN, "
                "LIKE, IS NULL and AND/OR/NOT over allowed columns and literals"
            )
        if isinstance(node, exp.Column):
            cols.resolve(node, entity_ok=True)
            node.set("table", None)
    return predicate.sql("duckdb")


def _key_values(
    entry: CatalogEntry, keys: tuple[str, ...]
) -> tuple[tuple[str | int, ...], ...] | None:
    values = [entry.column(k).values for k in keys]
    if any(v is None for v in values):
        return None
    return tuple(tuple(v or ()) for v in values)


def _check_privacy_unit(agreement: Agreement, entry: CatalogEntry) -> None:
    """The entity column (and with it the contribution rank) must be in the agreement's
    database, or contributions cannot be bounded."""
    if entry.entity is not None and not has_contribution_rank(agreement, entry):
        raise _refuse(
            f"dataset {entry.name!r} protects entity {entry.entity!r}, which this record-mode "
            "agreement does not include, so one entity's rows cannot be bounded for DP",
            NO_PRIVACY_UNIT,
        )


def plan_query(sql: str, agreement: Agreement, catalog: Mapping[str, CatalogEntry]) -> DpPlan:
    """Plan a DP release of ``sql`` under ``agreement``, or raise :class:`PolicyViolation`."""
    select = _parse(sql)
    _reject_extra_clauses(select)
    entry = _dataset(select, agreement, catalog)
    _check_privacy_unit(agreement, entry)
    source = select.args.get("from_") or select.args.get("from")
    cols = _Columns(agreement, entry, source.this.alias_or_name)
    keys = _group_keys(select, cols)
    return DpPlan(
        dataset=entry.name,
        entity=entry.entity,
        group_keys=keys,
        key_values=_key_values(entry, keys),
        outputs=_outputs(select, keys, cols),
        where=_where(select, cols),
    )
