"""Table checks from the underlying rows: each ACRO rule, suppression, recomputed totals."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from export_review.disclosure import TOTAL, check_table
from export_review.sdc_rules import Thresholds
from sandbox.errors import ValidationFailed


def rows(cells: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Underlying rows from {(area, sex): [values...]}."""
    return pd.DataFrame(
        [{"area": a, "sex": s, "income": v} for (a, s), values in cells.items() for v in values]
    )


BASE = {
    ("A", "f"): [10.0] * 12,
    ("A", "m"): [11.0] * 15,
    ("B", "f"): [9.0] * 20,
    ("B", "m"): [12.0] * 3,
}  # (B, m) is a small cell


def test_threshold_suppresses_small_cells_and_recomputes_totals():
    check = check_table(rows(BASE), index=["area"], columns=["sex"])
    assert check.outcome.loc["B", "m"] == "threshold"
    assert check.outcome.loc["A", "f"] == "ok"
    assert (check.status, check.status_after) == ("fail", "pass")
    assert math.isnan(check.suppressed.loc["B", "m"])
    assert check.suppressed.loc["B", TOTAL] == 20  # not 23: the small cell is not recoverable
    assert check.suppressed.loc[TOTAL, "m"] == 15
    assert check.suppressed.loc[TOTAL, TOTAL] == 47


def test_empty_cells_are_zeros_and_below_threshold():
    data = rows({("A", "f"): [1.0] * 12, ("B", "m"): [1.0] * 12})
    check = check_table(data, index=["area"], columns=["sex"])
    assert check.outcome.loc["A", "m"] == "threshold; zeros"
    assert check.table.loc["A", "m"] == 0


def test_dominance_and_p_ratio_on_magnitude_tables():
    data = rows(
        {
            **BASE,
            ("A", "f"): [1000.0] + [1.0] * 11,  # one contributor dominates
            ("A", "m"): [100.0, 100.0] + [1.0] * 13,
        }
    )  # two dominate: rest 13 < 10% of 100?
    check = check_table(data, index=["area"], columns=["sex"], values="income", statistic="sum")
    assert check.outcome.loc["A", "f"] == "nk-rule; p-ratio"
    assert check.masks["nk-rule"].loc["A", "m"]  # 200 / 213 >= 0.9
    assert not check.masks["p-ratio"].loc["A", "m"]  # 13 / 100 is not under 10%
    assert check.outcome.loc["B", "f"] == "ok"


def test_negative_and_missing_values_go_to_review_not_suppression():
    data = rows({**BASE, ("A", "f"): [10.0] * 11 + [-5.0], ("B", "f"): [9.0] * 19 + [None]})
    check = check_table(data, index=["area"], columns=["sex"], values="income", statistic="mean")
    assert check.outcome.loc["A", "f"] == "negative"
    assert check.outcome.loc["B", "f"] == "missing"
    assert not check.masks["nk-rule"].to_numpy().any()  # dominance undefined with negatives
    assert check.status_after == "review"
    assert not math.isnan(check.suppressed.loc["A", "f"])


def test_min_and_max_are_disclosive_statistics():
    check = check_table(rows(BASE), index=["area"], values="income", statistic="max")
    assert all("disclosive-statistic" in o for o in check.outcome["max"])
    assert check.status_after == "review"


def test_thresholds_come_from_the_agreement(world):
    t = Thresholds.from_agreement(world.agreement)
    assert (t.threshold, t.nk_n, t.nk_k, t.p_ratio) == (10, 2, 0.9, 0.1)
    strict = check_table(
        rows(BASE), index=["area"], columns=["sex"], thresholds=Thresholds(threshold=13)
    )
    assert strict.outcome.loc["A", "f"] == "threshold"


def test_the_value_column_is_required_for_magnitude_tables():
    with pytest.raises(ValidationFailed):
        check_table(rows(BASE), index=["area"], statistic="sum")
