"""Statistical disclosure control rules, one function each, as ACRO implements them.

Every rule takes the per-cell evidence (one row per table cell, computed from
the underlying rows by :mod:`export_review.disclosure`) and returns a boolean
Series: True where the cell is disclosive. Defaults follow ACRO's
``default.yaml`` (threshold 10, dominance n=2 k=0.9, p-ratio 10%, zeros
disclosive); an agreement's ``disclosure`` clause overrides them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from sandbox.contracts.agreement import Agreement


@dataclass(frozen=True)
class Thresholds:
    """Risk appetite for table checks (ACRO's safe_threshold, safe_nk_n/k, safe_pratio_p)."""

    threshold: int = 10
    nk_n: int = 2
    nk_k: float = 0.9
    p_ratio: float = 0.10
    zeros_disclosive: bool = True

    @classmethod
    def from_agreement(cls, agreement: Agreement) -> Thresholds:
        d = agreement.disclosure
        return cls(
            threshold=d.min_group_size,
            nk_n=d.dominance[0],
            nk_k=d.dominance[1],
            p_ratio=d.p_percent / 100,
        )


#: Columns of the evidence frame the rules read (one row per cell).
EVIDENCE = ("count", "n_values", "sum", "top1", "top2_sum", "topn_sum", "negatives", "missing")


def threshold(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """Fewer than ``threshold`` rows behind the cell (an empty cell included)."""
    return cells["count"] < t.threshold


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
    return (cells["topn_sum"] / cells["sum"] >= t.nk_k).fillna(False).astype(bool)


def p_ratio(cells: pd.DataFrame, t: Thresholds) -> pd.Series:
    """The rest, without the two largest, is under ``p`` of the largest: it can be estimated."""
    if not _dominance_defined(cells):
        return pd.Series(False, index=cells.index)
    rest = cells["sum"] - cells["top2_sum"]
    ratio = rest.where(cells["top1"] == 0, rest / cells["top1"].where(cells["top1"] != 0))
    return (ratio.fillna(1.0) < t.p_ratio).astype(bool)


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
