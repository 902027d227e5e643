"""Check an agreement against the catalogue it names (R1, R5).

The checks here depend only on the two contracts, so the guard, the CLI and
the control plane all run exactly the same ones.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, OpenClass
from sandbox.errors import ContractError, PolicyViolation

#: Node types of a plain predicate: comparisons and boolean logic over columns and
#: literals. Shared with the DP planner's WHERE (export_review/dp_plan.py).
PREDICATE_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Cast,
    exp.DataType,
    exp.Tuple,
    exp.Neg,
    exp.DataTypeParam,
    exp.Var,
)
#: A row filter may also use a few harmless scalar functions and arithmetic.
_FILTER_NODES: tuple[type[exp.Expression], ...] = (
    *PREDICATE_NODES,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Lower,
    exp.Upper,
    exp.Year,
    exp.Month,
    exp.Date,
)


def parse_row_filter(row_filter: str, dataset: CatalogEntry) -> exp.Expression:
    """Parse a row filter and make sure it is a plain predicate over the dataset's own columns."""
    where = f"datasets.{dataset.name}.row_filter"
    try:
        trees = [t for t in sqlglot.parse(row_filter, read="duckdb") if t is not None]
    except (SqlglotError, RecursionError) as exc:
        raise ContractError(f"{where}: does not parse as SQL: {exc}", rule="row-filter") from exc
    if not trees:
        raise ContractError(f"{where}: is empty", rule="row-filter")
    if len(trees) > 1:
        raise ContractError(
            f"{where}: holds {len(trees)} statements; a row filter is one expression (no ';')",
            rule="row-filter",
        )
    tree = trees[0]
    for node in tree.walk():
        if not isinstance(node, _FILTER_NODES):
            raise ContractError(
                f"{where}: {type(node).__name__} is not allowed; a row filter is a predicate of "
                "comparisons, IN, BETWEEN, LIKE, IS NULL, AND/OR/NOT over columns and literals",
                rule="row-filter",
            )
        if isinstance(node, exp.Column):
            if node.table and node.table != dataset.name:
                raise ContractError(
                    f"{where}: refers to {node.table}.{node.name}; only {dataset.name}'s own "
                    "columns may be used",
                    rule="row-filter",
                )
            if node.name not in dataset.column_names:
                raise ContractError(
                    f"{where}: unknown column {node.name!r}; columns are "
                    f"{', '.join(dataset.column_names)}",
                    rule="row-filter",
                )
    return tree


def validate_agreement(agreement: Agreement, catalog: dict[str, CatalogEntry]) -> None:
    """Raise on the first way the agreement does not fit the catalogue."""
    for name, scope in agreement.datasets.items():
        entry = catalog.get(name)
        if entry is None:
            raise ContractError(
                f"datasets.{name}: unknown dataset; the catalogue has "
                f"{', '.join(sorted(catalog)) or 'no datasets'}",
                rule="agreement-dataset",
            )
        if entry.open_class == OpenClass.non_open:
            raise PolicyViolation(
                "non-open-never-provisioned",
                "Shanghai Art.11; Wuxi Art.8",
                f"datasets.{name}: dataset is non-open (非开放) and may never be provisioned",
            )
        unknown = [c for c in scope.columns if c not in entry.column_names]
        if unknown:
            raise ContractError(
                f"datasets.{name}.columns: unknown column(s) {', '.join(unknown)}; "
                f"the dataset has {', '.join(entry.column_names)}",
                rule="agreement-columns",
            )
        if scope.row_filter:
            parse_row_filter(scope.row_filter, entry)
    for left, right in agreement.joins:
        for side in (left, right):
            ds, _, col = side.partition(".")
            entry = catalog[ds]
            if entry.column(col).sensitivity.value != "identifier" and entry.entity != col:
                # Joins on quasi-identifiers would let a researcher link records
                # the provider did not agree to link.
                raise ContractError(
                    f"joins: {side} is not an identifier column; joins are declared on "
                    "identifier (entity) columns only",
                    rule="agreement-joins",
                )
