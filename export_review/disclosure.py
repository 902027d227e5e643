"""Automatic disclosure checks on a table of statistics, from the rows behind each cell.

A researcher's table is checked against the *underlying rows* (not the
submitted numbers): the rows, the group keys that make its rows and columns,
and the value column of a magnitude table. Each cell gets an outcome, the
disclosive cells are suppressed, totals are recomputed from what remains
(so a suppressed cell cannot be recovered by subtraction from a published
total), and the table gets a status before and after mitigation. Rules and
defaults are ACRO's (see :mod:`export_review.sdc_rules`); checks serve the
provider's review (Shanghai Art.15 agreement conditions; Wuxi Art.20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from export_review import sdc_rules as rules
from sandbox.errors import ValidationFailed

Statistic = Literal["count", "sum", "mean", "median", "min", "max"]
Status = Literal["pass", "review", "fail"]
TOTAL = "Total"
_ADDITIVE = ("count", "sum")


@dataclass(frozen=True)
class TableCheck:
    """The checked table: statistic per cell, outcomes, and the mitigated table."""

    statistic: str
    table: pd.DataFrame
    #: Rule name -> boolean table, True where the rule finds the cell disclosive.
    masks: dict[str, pd.DataFrame]
    #: Per cell: "ok" or the rules that fired, joined by "; ".
    outcome: pd.DataFrame
    status: Status
    #: The table with disclosive cells suppressed (NaN) and totals recomputed.
    suppressed: pd.DataFrame
    status_after: Status

    def summary(self) -> dict[str, object]:
        """Counts of disclosive cells per rule, for the manifest and the reviewer."""
        return {
            "statistic": self.statistic,
            "status": self.status,
            "status_after_mitigation": self.status_after,
            "cells": int(self.table.size),
            "flagged": {name: int(mask.to_numpy().sum()) for name, mask in self.masks.items()},
        }


def _evidence(rows: pd.DataFrame, keys: list[str], values: str | None, n: int) -> pd.DataFrame:
    """Per-cell evidence over the full grid of observed keys (so empty cells appear).

    Keys are factorised to integer cell codes and every statistic is a
    ``bincount`` over rows sorted by (cell, value descending): one pass, no
    per-cell Python.
    """
    factors = [pd.factorize(rows[k], sort=True) for k in keys]
    code = np.zeros(len(rows), dtype=np.int64)
    for codes, uniques in factors:
        code = code * len(uniques) + codes
    keep = np.all([codes >= 0 for codes, _ in factors], axis=0)  # rows with a missing key
    size = int(np.prod([len(uniques) for _, uniques in factors]))
    v = (rows[values].to_numpy(dtype=float, na_value=np.nan) if values else np.ones(len(rows)))[
        keep
    ]
    code = code[keep]
    present = ~np.isnan(v)
    order = np.lexsort((-np.where(present, v, -np.inf), code))
    sc, sv = code[order], np.where(present, v, 0.0)[order]
    starts = np.searchsorted(sc, sc, side="left")
    rank = np.arange(len(sc)) - starts

    def count(
        mask: np.ndarray, weights: np.ndarray | None = None, on: np.ndarray = code
    ) -> np.ndarray:
        return np.bincount(
            on[mask], weights=None if weights is None else weights[mask], minlength=size
        )

    n_values = count(present)
    empty = np.where(n_values == 0, np.nan, 0.0)
    everything = np.ones(len(sc), dtype=bool)
    cells = pd.DataFrame(
        {
            "count": count(np.ones(len(code), dtype=bool)),
            "n_values": n_values,
            "sum": count(everything, sv, sc) + empty,
            "top1": count(rank == 0, sv, sc) + empty,
            "top2_sum": count(rank < 2, sv, sc),
            "topn_sum": count(rank < n, sv, sc),
            "negatives": count(present & (v < 0)),
            "missing": count(~present),
        }
    )
    levels = [pd.Index(uniques, name=k) for k, (_, uniques) in zip(keys, factors, strict=True)]
    cells.index = levels[0] if len(keys) == 1 else pd.MultiIndex.from_product(levels)
    return cells


def _statistic(
    rows: pd.DataFrame, keys: list[str], values: str | None, statistic: str, cells: pd.DataFrame
) -> pd.Series:
    if statistic == "count":
        return cells["count"].astype(float)
    if statistic == "sum":
        return cells["sum"]
    if statistic == "mean":
        return cells["sum"] / cells["n_values"].replace(0, np.nan)
    grouped = rows.groupby(keys, observed=True, dropna=False)[values]
    return grouped.agg(statistic).reindex(cells.index)


def _shape(series: pd.Series, index: list[str], columns: list[str]) -> pd.DataFrame:
    """Long (one row per cell) to the table's shape: index keys down, column keys across."""
    if columns:
        return series.unstack(columns)
    return series.to_frame(series.name or "value")


def _with_totals(
    table: pd.DataFrame,
    cells: pd.DataFrame,
    published: pd.Series,
    statistic: str,
    index: list[str],
    columns: list[str],
) -> pd.DataFrame:
    """Totals recomputed from published cells only (count, sum, mean)."""
    if statistic not in (*_ADDITIVE, "mean"):
        return table
    numerator = cells["count"] if statistic == "count" else cells["sum"]
    kept = cells.assign(num=numerator.where(published), den=cells["n_values"].where(published))

    def total(frame: pd.DataFrame) -> float:
        if statistic == "mean":
            den = frame["den"].sum()
            return frame["num"].sum() / den if den else np.nan
        return frame["num"].sum(min_count=1)

    out = table.copy()
    label = (
        pd.Index([TOTAL], name=index[0])
        if len(index) == 1
        else pd.MultiIndex.from_tuples([(TOTAL,) * len(index)], names=index)
    )
    if columns:
        out[TOTAL] = kept.groupby(index, dropna=False).apply(total)
        bottom = [
            *kept.groupby(columns, dropna=False).apply(total).reindex(table.columns),
            total(kept),
        ]
    else:
        bottom = [total(kept)]
    return pd.concat([out, pd.DataFrame([bottom], index=label, columns=out.columns)])


def _status(suppress: pd.Series, review: pd.Series) -> Status:
    if suppress.any():
        return "fail"
    return "review" if review.any() else "pass"


def check_table(
    rows: pd.DataFrame,
    *,
    index: Sequence[str],
    columns: Sequence[str] = (),
    values: str | None = None,
    statistic: Statistic = "count",
    thresholds: rules.Thresholds | None = None,
) -> TableCheck:
    """Check the table ``statistic(values)`` by ``index`` × ``columns`` over ``rows``."""
    t = thresholds or rules.Thresholds()
    index, columns = list(index), list(columns)
    keys = index + columns
    missing_cols = [c for c in [*keys, values] if c and c not in rows.columns]
    if missing_cols or not index or (statistic != "count" and values is None):
        raise ValidationFailed(
            f"a table check needs the underlying rows with its group keys and, for a "
            f"{statistic}, its value column; missing: {', '.join(missing_cols) or 'values'}",
            rule="sdc-input",
        )
    cells = _evidence(rows, keys, values, t.nk_n)
    magnitude = statistic != "count"
    active = {**rules.SUPPRESS, **rules.REVIEW}
    skipped = rules.FREQUENCY_ONLY if magnitude else rules.MAGNITUDE_ONLY
    long_masks = {name: rule(cells, t) for name, rule in active.items() if name not in skipped}
    if statistic in rules.DISCLOSIVE_STATISTICS:
        long_masks["disclosive-statistic"] = cells["count"] > 0
    suppress = pd.concat([m for n, m in long_masks.items() if n in rules.SUPPRESS], axis=1).any(
        axis=1
    )
    review = pd.concat(
        [m for n, m in long_masks.items() if n not in rules.SUPPRESS]
        or [pd.Series(False, index=cells.index)],
        axis=1,
    ).any(axis=1)
    outcome = pd.Series("ok", index=cells.index)
    fired = pd.DataFrame(long_masks)
    labels = fired.apply(lambda row: "; ".join(n for n, hit in row.items() if hit), axis=1)
    outcome = outcome.where(labels == "", labels)
    value = _statistic(rows, keys, values, statistic, cells).rename(statistic)
    table = _shape(value, index, columns)
    suppressed = _with_totals(
        _shape(value.where(~suppress), index, columns), cells, ~suppress, statistic, index, columns
    )
    return TableCheck(
        statistic=statistic,
        table=table,
        masks={n: _shape(m.rename(statistic), index, columns) for n, m in long_masks.items()},
        outcome=_shape(outcome.rename(statistic), index, columns),
        status=_status(suppress, review),
        suppressed=suppressed,
        status_after=_status(pd.Series(False), review & ~suppress),
    )
