"""The disclosure rules, one copy each, below everything that applies them.

Both aggregate mode (:mod:`query_guard.anonymise`, per value it returns to a
workspace) and the export checks (:mod:`export_review.sdc_rules`, per cell of a
table leaving the platform) decide with these functions. Each works on plain
numbers and, elementwise, on NumPy arrays or pandas Series alike. Defaults
follow ACRO's ``default.yaml`` (threshold 10, dominance n=2 k=0.9, p-ratio
10%); an agreement's ``disclosure`` clause overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sandbox.contracts.agreement import Agreement

Number = TypeVar("Number")


@dataclass(frozen=True)
class Thresholds:
    """Risk appetite (ACRO's safe_threshold, safe_nk_n/k, safe_pratio_p, zeros)."""

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


def below_threshold(contributors: Number, t: Thresholds) -> Number:
    """Fewer than ``threshold`` contributors behind the value (none included)."""
    return contributors < t.threshold  # type: ignore[operator]


def nk_dominated(topn_sum: Number, total: Number, t: Thresholds) -> Number:
    """The ``n`` largest contributions make up at least ``k`` of the total."""
    return topn_sum / total >= t.nk_k  # type: ignore[operator]


def p_estimable(rest: Number, top1: Number, t: Thresholds) -> Number:
    """What is left without the two largest is under ``p`` of the largest: the second
    largest contributor could estimate the largest from the total."""
    return rest / top1 < t.p_ratio  # type: ignore[operator]
