"""Compute a planned DP release: bound contributions, aggregate exactly, add OpenDP noise.

Release happens in two steps so the ledger can sit between them:

1. :func:`prepare` chooses every mechanism from the plan alone (no data is
   read) and states their total cost; the caller charges that cost and
   commits the charge.
2. :func:`execute` then reads the agreement's DuckDB database and releases.

Defaults, and where they come from:

- ``max_contributions`` comes from the agreement (``privacy.max_contributions``,
  default 1, ARCHITECTURE). Each entity keeps at most that many rows, chosen at
  random per entity *before* aggregation (the random order is drawn when the
  agreement's database is built, see :func:`exact_sql`); the bound is never
  learnt from the data. A dataset without an ``entity`` protects single rows
  (bound 1).
- Values of SUM/AVG columns are clamped to the catalogue's public ``bounds``.
- ε is split equally between the release's measurements; δ is spent only when
  partitions are selected, :data:`SELECTION_DELTA_SHARE` of the agreement's δ
  per such release (so an agreement's δ covers ten of them).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
from sqlglot import exp

from export_review import dp_mechanisms as mech
from export_review.dp_plan import Aggregate, DpPlan
from query_guard.compile import CONTRIBUTION_RANK, private_table

#: Share of the agreement's total δ one partition-selecting release may spend.
SELECTION_DELTA_SHARE = 0.1
#: Guard against float rounding pushing the sum of per-mechanism ε over the charge.
_EPSILON_SLACK = 1 - 1e-9


@dataclass(frozen=True)
class PreparedRelease:
    """The mechanisms of one release, chosen before any data is read."""

    plan: DpPlan
    max_contributions: int
    selection: mech.Mechanism | None
    #: One entry per aggregate of the plan, in order: its mechanisms by role.
    per_aggregate: tuple[dict[str, mech.Mechanism], ...]

    @property
    def mechanisms(self) -> list[mech.Mechanism]:
        chosen = [self.selection] if self.selection else []
        return chosen + [m for roles in self.per_aggregate for m in roles.values()]

    @property
    def epsilon(self) -> float:
        return sum(m.epsilon for m in self.mechanisms)

    @property
    def delta(self) -> float:
        return sum(m.delta for m in self.mechanisms)


@dataclass(frozen=True)
class DpResult:
    """Released columns and noisy rows, with the mechanisms that produced them."""

    columns: list[str]
    rows: list[list[Any]]
    mechanisms: list[str] = field(default_factory=list)


def _measurement_count(plan: DpPlan) -> int:
    selecting = plan.key_values is None
    count = 1 if selecting else 0
    for agg in plan.aggregates:
        if agg.kind == "avg":
            count += 2
        elif not (selecting and agg.kind == "count"):
            count += 1
    return count


def prepare(
    plan: DpPlan, *, epsilon: float, max_contributions: int, selection_delta: float
) -> PreparedRelease:
    """Choose the mechanisms for ``plan`` so that their total ε is at most ``epsilon``."""
    k = max_contributions if plan.entity else 1
    each = epsilon / _measurement_count(plan) * _EPSILON_SLACK
    selection = None
    if plan.key_values is None:
        selection = mech.threshold_mechanism(k, each, selection_delta)
    per_aggregate = []
    for agg in plan.aggregates:
        roles: dict[str, mech.Mechanism] = {}
        if agg.kind == "count" and selection is None:
            roles["count"] = mech.count_mechanism(k, each, "count")
        elif agg.kind == "count_distinct":
            roles["count"] = mech.count_mechanism(k, each, "count distinct")
        elif agg.kind in ("sum", "avg"):
            assert agg.bounds is not None  # the planner refuses unbounded sums
            reach = k * max(abs(agg.bounds[0]), abs(agg.bounds[1]))
            roles["sum"] = mech.sum_mechanism(
                reach, each, "sum" if agg.kind == "sum" else "sum for avg"
            )
            if agg.kind == "avg":
                roles["count"] = mech.count_mechanism(k, each, "count for avg")
        per_aggregate.append(roles)
    return PreparedRelease(plan, k, selection, tuple(per_aggregate))


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _aggregate_sql(i: int, agg: Aggregate) -> list[str]:
    if agg.kind == "count":
        return [f"COUNT(*) AS a{i}"]
    column = _ident(agg.column or "")
    if agg.kind == "count_distinct":
        return [f"COUNT(DISTINCT {column}) AS a{i}"]
    low, high = agg.bounds or (0.0, 0.0)
    clamped = f"LEAST(GREATEST({column}, {low!r}), {high!r})"
    # Summed as DECIMAL: exact, so the sum's sensitivity is the clamped bound.
    parts = [f"SUM(CAST({clamped} AS DECIMAL(38, 6))) AS a{i}"]
    if agg.kind == "avg":
        parts.append(f"COUNT({column}) AS n{i}")
    return parts


def exact_sql(plan: DpPlan, max_contributions: int) -> str:
    """The exact per-group aggregates over contribution-bounded rows (not released as is).

    Each entity keeps the rows whose :data:`~query_guard.compile.CONTRIBUTION_RANK`
    is at most ``max_contributions``. That rank is a uniformly random order of
    the entity's rows, drawn with ``random()`` once, when the agreement's
    database is built, so bounding is a filter rather than a grouping over
    every entity at release time. It is still *enforced by sampling, not learnt
    from the data*: the bound comes from the agreement, and which rows are kept
    depends only on the random draw, never on their values or on other
    entities. Whatever the draw, neighbouring datasets (one entity's rows
    added or removed) differ in at most ``max_contributions`` kept rows, which
    is the sensitivity every mechanism is calibrated to.

    Repeated releases reuse the same sample (until the database is rebuilt).
    That is sound: the bound above holds for every fixed draw, so each release
    is (ε, δ)-DP on its own and releases compose additively exactly as if each
    had drawn afresh. Two consequences are by design: repeating a query only
    averages away the noise, never the sampling; and the ``WHERE`` of a
    release filters the sampled rows, so an entity whose sampled rows fail the
    predicate contributes nothing even when other rows of it would pass.

    Rows with no entity are left out: they could belong to anyone, so they
    cannot be bounded.
    """
    conditions = [f"({plan.where})"] if plan.where else []
    if plan.entity:
        conditions += [
            f"{_ident(plan.entity)} IS NOT NULL",
            f"{_ident(CONTRIBUTION_RANK)} <= {int(max_contributions)}",
        ]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    keys = [f"{_ident(k)} AS k{j}" for j, k in enumerate(plan.group_keys)]
    aggs = [p for i, a in enumerate(plan.aggregates) for p in _aggregate_sql(i, a)]
    group = f" GROUP BY {', '.join(_ident(k) for k in plan.group_keys)}" if keys else ""
    return (
        f"SELECT {', '.join([*keys, 'COUNT(*) AS n_rows', *aggs])} "
        f"FROM {private_table(plan.dataset)}{where}{group}"
    )


def _exact(conn: duckdb.DuckDBPyConnection, prepared: PreparedRelease) -> dict[tuple, dict]:
    cursor = conn.execute(exact_sql(prepared.plan, prepared.max_contributions))
    names = [d[0] for d in cursor.description]
    width = len(prepared.plan.group_keys)
    return {tuple(row[:width]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _text(key: tuple) -> str:
    """A group key as text, so keys read from data and public values compare alike."""
    return json.dumps([None if v is None else str(v) for v in key], ensure_ascii=False)


def _released_keys(
    prepared: PreparedRelease, exact: dict[tuple, dict]
) -> tuple[list[tuple], dict[tuple, dict], dict[tuple, int]]:
    """Keys to release, their exact aggregates, and the selection's noisy counts.

    Every public key is released, even an empty one; without public values,
    only the keys the noisy threshold selects.
    """
    plan = prepared.plan
    if plan.key_values is not None:
        by_text = {_text(key): values for key, values in exact.items()}
        public = list(itertools.product(*plan.key_values))
        return public, {key: by_text.get(_text(key), {}) for key in public}, {}
    assert prepared.selection is not None
    encoded = {_text(key): key for key in exact}
    kept = mech.selected_counts(
        prepared.selection, {text: exact[key]["n_rows"] for text, key in encoded.items()}
    )
    keys = sorted((encoded[text] for text in kept), key=_text)
    return keys, exact, {encoded[text]: count for text, count in kept.items()}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else 0.0


def _release_aggregate(
    i: int,
    agg: Aggregate,
    roles: dict[str, mech.Mechanism],
    keys: list[tuple],
    exact: dict[tuple, dict],
    selected: dict[tuple, int],
) -> list[Any]:
    if agg.kind == "count" and not roles:
        return [max(0, selected[key]) for key in keys]
    if agg.kind in ("count", "count_distinct"):
        counts = mech.noisy_counts(roles["count"], [exact[k].get(f"a{i}") or 0 for k in keys])
        return [max(0, c) for c in counts]
    sums = mech.noisy_sums(roles["sum"], [_number(exact[k].get(f"a{i}")) for k in keys])
    if agg.kind == "sum":
        return sums
    counts = mech.noisy_counts(roles["count"], [exact[k].get(f"n{i}") or 0 for k in keys])
    low, high = agg.bounds or (0.0, 0.0)
    return [min(high, max(low, s / max(c, 1))) for s, c in zip(sums, counts, strict=True)]


def execute(conn: duckdb.DuckDBPyConnection, prepared: PreparedRelease) -> DpResult:
    """Read the data and release it through the prepared mechanisms.

    Call only after the release's cost is committed to the ledger.
    """
    plan = prepared.plan
    keys, exact, selected = _released_keys(prepared, _exact(conn, prepared))
    columns_by_aggregate = [
        _release_aggregate(i, agg, roles, keys, exact, selected)
        for i, (agg, roles) in enumerate(zip(plan.aggregates, prepared.per_aggregate, strict=True))
    ]
    rows = []
    for r, key in enumerate(keys):
        row, a = [], 0
        for out in plan.outputs:
            if out.key is not None:
                row.append(key[plan.group_keys.index(out.key)])
            else:
                row.append(columns_by_aggregate[a][r])
                a += 1
        rows.append(row)
    return DpResult([o.name for o in plan.outputs], rows, [m.name for m in prepared.mechanisms])
