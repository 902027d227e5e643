"""Statistical disclosure control rules, one function each, as ACRO implements them.

Every rule takes the per-cell evidence (one row per table cell, computed from
the underlying rows by :mod:`export_review.disclosure`) and returns a boolean
Series: True where the cell is disclosive. The rules themselves live in
:mod:`query_guard.disclosure_rules`, shared with aggregate mode; this module
applies them to the evidence frame.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from query_guard.disclosure_rules import (
    Thresholds,
    below_threshold,
    nk_dominated,
    p_estimable,
)

__all__ = ["Thresholds"]


#: Columns of the evidence frame the rules read (one row per cell).
EVIDENCE = ("count", "n_values", "sum", "top1", "top2_sum", "topn_sum", "negatives", "missing")


def threshold(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """Fewer than ``threshold`` rows behind the cell (an empty cell included)."""
    return below_threshold(cells["count"], t)


def zeros(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """An empty cell tells that no one has that combination (class disclosure)."""
    return (cells["count"] == 0) & t.zeros_disclosive


def _dominance_defined(cells: pd.DataFrame) -> bool:
    """ACRO does not apply dominance rules to a table with any negative value."""
    return not (cells["negatives"] > 0).any()


def nk_rule(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """The ``n`` largest contributions make up at least ``k`` of the cell's total."""
    if not _dominance_defined(cells):
        return pd.Series(False, index=cells.index)
    return nk_dominated(cells["topn_sum"], cells["sum"], t).fillna(False).astype(bool)


def p_ratio(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """The rest, without the two largest, is under ``p`` of the largest: it can be estimated."""
    if not _dominance_defined(cells):
        return pd.Series(False, index=cells.index)
    rest = cells["sum"] - cells["top2_sum"]
    top1 = cells["top1"].where(cells["top1"] != 0, 1.0)  # no largest: compare the rest itself
    return p_estimable(rest, top1, t).fillna(False).astype(bool)


def negative(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """Negative values: dominance is undefined, so a person must look."""
    return cells["negatives"] > 0


def missing(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """Missing values were left out of the statistic: a person must judge whether that is right."""
    return cells["missing"] > 0


Rule = Callable[[pd.DataFrame, Thresholds], pd.Series]

#: Rules whose disclosive cells are suppressed.
SUPPRESS: dict[str, Rule] = {
    "threshold": threshold,
    "zeros": zeros,
    "nk-rule": nk_rule,
    "p-ratio": p_ratio,
}
#: Rules whose cells are sent to a person (not suppressed automatically).
REVIEW: dict[str, Rule] = {"negative": negative, "missing": missing}
#: Dominance only means something for magnitude tables (sums, means ...).
MAGNITUDE_ONLY = frozenset({"nk-rule", "p-ratio", "negative", "missing"})
#: As in ACRO, an empty cell of a magnitude table has no value to hide (and is
#: under the threshold anyway): zeros are checked in frequency tables.
FREQUENCY_ONLY = frozenset({"zeros"})
#: Statistics that are a single person's value: always sent to review.
DISCLOSIVE_STATISTICS = frozenset({"min", "max"})
