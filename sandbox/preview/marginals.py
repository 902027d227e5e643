"""Which column of a dataset is released how, and its differentially private one-way marginal.

Decided from the catalogue entry alone, before any data is read:

- a column with public ``values`` (or a BOOLEAN, whose values are public by
  nature): noisy counts per value;
- a numeric column with ``bounds``: a noisy histogram over :data:`BINS`
  equal-width bins within the bounds (values outside are clamped into the
  edge bins);
- a DATE or TIMESTAMP column: a noisy histogram by month. Months are not a
  public domain, so they are selected by OpenDP's noisy threshold, which
  spends δ; with no δ the column is withheld;
- an identifier column: never measured; the sample gets placeholders
  (:mod:`sandbox.preview.synthesis`);
- anything else (free text, unbounded numbers): withheld, never released.

Counts get the discrete Laplace mechanism and months the Laplace threshold,
both from :mod:`export_review.dp_mechanisms` (the platform's one door to
OpenDP). The privacy unit is the dataset's ``entity`` (ARCHITECTURE
"Differential privacy, precisely"): before counting, each entity keeps at
most ``max_contributions`` of its rows, drawn at random, so one entity moves
each marginal by at most that many in L1; rows without an entity are left
out, since they cannot be bounded. A dataset without an entity protects
single rows. ε is split equally between the measured columns and δ equally
between the date columns; the costs add up (basic composition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
from sqlglot import exp

from export_review import dp_mechanisms as mech
from query_guard.at_rest import parquet_source, refused_without_key
from sandbox.contracts.catalog_entry import CatalogEntry, Column, Sensitivity

#: Equal-width bins of a bounded numeric column's histogram.
BINS = 10
#: Guard against float rounding pushing the per-column ε over the charge.
_EPSILON_SLACK = 1 - 1e-9
_NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL")
_DATES = ("DATE", "TIMESTAMP")

How = Literal["values", "bins", "months", "identifier", "withheld"]
MEASURED: tuple[How, ...] = ("values", "bins", "months")


@dataclass(frozen=True)
class ColumnPlan:
    """How one column appears in the preview, and why (the README quotes ``reason``)."""

    name: str
    type: str
    how: How
    reason: str
    categories: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    #: For identifier columns: ``resident_id``, ``credit_code`` or None (another key).
    identifier_kind: str | None = None


@dataclass(frozen=True)
class PreparedPreview:
    """The preview's mechanisms, chosen before any data is read, and what they cost."""

    columns: tuple[ColumnPlan, ...]
    max_contributions: int
    mechanisms: Mapping[str, mech.Mechanism]

    @property
    def epsilon(self) -> float:
        return sum(m.epsilon for m in self.mechanisms.values())

    @property
    def delta(self) -> float:
        return sum(m.delta for m in self.mechanisms.values())


def _plan(column: Column, identifier_kind: str | None, months_allowed: bool) -> ColumnPlan:
    name, kind = column.name, column.type
    if column.sensitivity == Sensitivity.identifier:
        return ColumnPlan(
            name,
            kind,
            "identifier",
            "identifier: placeholders from region 99",
            identifier_kind=identifier_kind,
        )
    if column.values is not None:
        return ColumnPlan(
            name,
            kind,
            "values",
            "noisy counts per public value",
            categories=tuple(str(v) for v in column.values),
        )
    if kind == "BOOLEAN":
        return ColumnPlan(
            name, kind, "values", "noisy counts of false and true", categories=("false", "true")
        )
    if kind in _NUMERIC and column.bounds is not None:
        return ColumnPlan(
            name,
            kind,
            "bins",
            f"noisy histogram over {BINS} bins within the bounds",
            bounds=(float(column.bounds[0]), float(column.bounds[1])),
        )
    if kind in _DATES:
        if months_allowed:
            return ColumnPlan(
                name,
                kind,
                "months",
                "noisy histogram by month (months selected by a noisy threshold)",
            )
        return ColumnPlan(
            name, kind, "withheld", "withheld: months can only be selected with delta > 0"
        )
    return ColumnPlan(name, kind, "withheld", "withheld: no public domain or bounds")


def plan_columns(
    entry: CatalogEntry, identifier_kinds: Mapping[str, str | None], *, months_allowed: bool
) -> tuple[ColumnPlan, ...]:
    """Every catalogue column, in order, with how the preview shows it.

    ``identifier_kinds`` comes from the published quality report (public), so
    placeholders look like the kind of identifier the column holds.
    """
    return tuple(_plan(c, identifier_kinds.get(c.name), months_allowed) for c in entry.columns)


def prepare(
    columns: tuple[ColumnPlan, ...], *, epsilon: float, delta: float, max_contributions: int
) -> PreparedPreview:
    """Choose each measured column's mechanism so that their total ε is at most ``epsilon``.

    ``max_contributions`` is the provider's bound per entity (1 when the
    dataset has no entity: then a row is the privacy unit).
    """
    measured = [c for c in columns if c.how in MEASURED]
    dated = [c for c in measured if c.how == "months"]
    chosen: dict[str, mech.Mechanism] = {}
    if measured:
        each = epsilon / len(measured) * _EPSILON_SLACK
        for c in measured:
            if c.how == "months":
                chosen[c.name] = mech.threshold_mechanism(
                    max_contributions, each, delta / len(dated)
                )
            else:
                chosen[c.name] = mech.count_mechanism(
                    max_contributions, each, f"{c.how} of {c.name}"
                )
    return PreparedPreview(columns, max_contributions, chosen)


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _bounded(
    conn: duckdb.DuckDBPyConnection, source: Path, key: bytes | None, entity: str | None, k: int
) -> None:
    """The temporary table ``bounded``: at most ``k`` random rows per entity."""
    rows = parquet_source(conn, source, key=key, name="version")
    remedy = "publish the dataset again"
    with refused_without_key(f"the dataset version {source.name}", key, remedy):
        if entity is None:
            conn.execute(f"CREATE TEMP TABLE bounded AS SELECT * FROM {rows}")
            return
        e = _ident(entity)
        conn.execute(
            "CREATE TEMP TABLE bounded AS SELECT * EXCLUDE (__draw) FROM "
            f"(SELECT *, random() AS __draw FROM {rows} WHERE {e} IS NOT NULL) "
            f"QUALIFY row_number() OVER (PARTITION BY {e} ORDER BY __draw) <= {int(k)}"
        )


def bin_edges(bounds: tuple[float, float]) -> list[float]:
    low, high = bounds
    return [low + (high - low) * i / BINS for i in range(BINS + 1)]


def _key_sql(plan: ColumnPlan) -> str:
    """The SQL expression giving each row's cell of the column's marginal."""
    column = _ident(plan.name)
    if plan.how == "values":
        return f"CAST({column} AS VARCHAR)"
    if plan.how == "months":
        return f"strftime(CAST({column} AS DATE), '%Y-%m')"
    assert plan.bounds is not None
    low, high = plan.bounds
    if high == low:
        return "'0'"
    clamped = f"LEAST(GREATEST(CAST({column} AS DOUBLE), {low!r}), {high!r})"
    cell = f"CAST(floor(({clamped} - {low!r}) / {(high - low) / BINS!r}) AS BIGINT)"
    return f"CAST(LEAST({cell}, {BINS - 1}) AS VARCHAR)"


def _exact_counts(conn: duckdb.DuckDBPyConnection, plan: ColumnPlan) -> dict[str, int]:
    key = _key_sql(plan)
    rows = conn.execute(
        f"SELECT {key} AS k, COUNT(*) FROM bounded WHERE {_ident(plan.name)} IS NOT NULL GROUP BY k"
    ).fetchall()
    return {str(k): int(n) for k, n in rows if k is not None}


def _released(
    plan: ColumnPlan, mechanism: mech.Mechanism | None, exact: dict[str, int] | None
) -> dict[str, Any]:
    """One column's entry in the stored release (its noisy marginal, or why it has none)."""
    out: dict[str, Any] = {
        "name": plan.name,
        "type": plan.type,
        "how": plan.how,
        "reason": plan.reason,
    }
    if mechanism is None or exact is None:
        if plan.how == "identifier":
            out["identifier_kind"] = plan.identifier_kind
        return out
    out.update(mechanism=mechanism.name, epsilon=mechanism.epsilon, delta=mechanism.delta)
    if plan.how == "months":
        out["months"] = dict(sorted(mech.selected_counts(mechanism, exact).items()))
        return out
    if plan.how == "values":
        out["categories"] = list(plan.categories)
        cells = list(plan.categories)
    else:
        assert plan.bounds is not None
        out["bounds"] = list(plan.bounds)
        out["edges"] = bin_edges(plan.bounds)
        cells = [str(i) for i in range(BINS)]
    out["counts"] = mech.noisy_counts(mechanism, [exact.get(c, 0) for c in cells])
    return out


def measure(
    prepared: PreparedPreview, source: Path, key: bytes | None, entity: str | None
) -> list[dict[str, Any]]:
    """Release every column's noisy marginal from the Parquet file ``source`` (encrypted
    under ``key``, if one is given).

    Call only after the preview's cost has been charged and committed.
    """
    with duckdb.connect() as conn:
        _bounded(conn, source, key, entity, prepared.max_contributions)
        released = []
        for plan in prepared.columns:
            mechanism = prepared.mechanisms.get(plan.name)
            exact = _exact_counts(conn, plan) if mechanism is not None else None
            released.append(_released(plan, mechanism, exact))
    return released
