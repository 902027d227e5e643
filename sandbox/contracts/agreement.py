"""Data-use agreement contract (R5: Shanghai Art.15; Rizhao Art.20).

The agreement is machine-readable and *is* the policy the sandbox enforces.
Dates are inclusive calendar days in Asia/Shanghai.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.contracts.names import nfc
from sandbox.input_limits import Epsilon, LongText, Name, RowId, Title

AGREEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
OUTPUT_FORMS = ("dp_table", "table", "figure", "report", "code")
REPORT_FREQUENCIES = ("monthly", "quarterly", "semiannual", "annual", "end")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgreementDataset(_Strict):
    """What of one dataset the agreement allows."""

    columns: list[Name] = Field(min_length=1)
    row_filter: LongText | None = None

    @field_validator("columns")
    @classmethod
    def _names_in_nfc(cls, v: list[str]) -> list[str]:
        """Names as the catalogue keeps them (``sandbox.contracts.names``)."""
        return [nfc(name) for name in v]


class Disclosure(_Strict):
    """Disclosure thresholds; defaults follow ACRO (threshold 10, dominance 2/0.9, p 10%).

    Aggregate mode's perturbation (``query_guard.anonymise``) follows Open Diffix Elm's
    defaults: noise of standard deviation ``noise_sd`` per layer, in units of the
    largest remaining contributions; a low-count threshold ``min_group_size`` plus
    ``threshold_sd`` half-normal noise; 1-2 outliers flattened to the mean of the
    next 3-4 contributions.
    """

    min_group_size: int = Field(default=10, ge=1)
    max_result_rows: int = Field(default=10000, ge=1)
    dominance: tuple[int, float] = (2, 0.9)
    p_percent: float = Field(default=10, ge=0, le=100)
    noise_sd: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    threshold_sd: float = Field(default=1.0, ge=0, le=100, allow_inf_nan=False)
    outliers: tuple[int, int] = (1, 2)
    top_group: tuple[int, int] = (3, 4)

    @field_validator("outliers", "top_group")
    @classmethod
    def _interval(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1] <= 10:
            raise ValueError("is [low, high] with 1 <= low <= high <= 10")
        return v

    @field_validator("dominance")
    @classmethod
    def _dominance(cls, v: tuple[int, float]) -> tuple[int, float]:
        n, k = v
        if n < 1 or not 0 < k <= 1:
            raise ValueError("dominance is [n, k] with n >= 1 and 0 < k <= 1")
        return v


class Privacy(_Strict):
    """The agreement's differential-privacy budget, composed additively in (epsilon, delta).

    Both are finite: an infinite budget is no budget, and NaN compares false with
    every charge, so either would let releases through unaccounted; ε is also within what
    the privacy ledger can count (rule dp-epsilon)."""

    epsilon: Epsilon = 1.0
    delta: float = Field(default=1e-6, ge=0, lt=1, allow_inf_nan=False)
    max_contributions: int = Field(default=1, ge=1)


class Review(_Strict):
    reviewers: int = Field(default=1, ge=1, le=2)


class Agreement(_Strict):
    """A signed data-use agreement, as its YAML contract states it."""

    id: str
    title: Title
    provider: Name
    researchers: list[Name] = Field(min_length=1)
    purpose: LongText
    mode: Literal["aggregate", "record"] = "aggregate"
    valid_from: date
    valid_until: date
    datasets: dict[str, AgreementDataset] = Field(min_length=1)
    joins: list[tuple[str, str]] = Field(default_factory=list)
    disclosure: Disclosure = Field(default_factory=Disclosure)
    privacy: Privacy = Field(default_factory=Privacy)
    outputs: list[Literal["dp_table", "table", "figure", "report", "code"]] = Field(
        default_factory=lambda: ["dp_table"]
    )
    review: Review = Field(default_factory=Review)
    usage_reports: Literal["monthly", "quarterly", "semiannual", "annual", "end"] | None = None
    scenario: LongText | None = None
    application_id: RowId | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not AGREEMENT_ID.match(v):
            raise ValueError("must be letters, digits, '.', '_' or '-' (at most 64)")
        return v

    @field_validator("datasets")
    @classmethod
    def _dataset_names_in_nfc(cls, v: dict[str, AgreementDataset]) -> dict[str, AgreementDataset]:
        return {nfc(name): scope for name, scope in v.items()}

    @field_validator("joins")
    @classmethod
    def _join_names_in_nfc(cls, v: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(nfc(left), nfc(right)) for left, right in v]

    @field_validator("joins", mode="before")
    @classmethod
    def _joins_are_pairs(cls, v: object) -> object:
        if isinstance(v, list):
            for pair in v:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise ValueError("each join is a pair [dataset.column, dataset.column]")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Agreement:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        for left, right in self.joins:
            for side in (left, right):
                ds, _, col = side.partition(".")
                if not col or ds not in self.datasets:
                    raise ValueError(
                        f"join side {side!r} must be dataset.column of a dataset in this agreement"
                    )
                if col not in self.datasets[ds].columns:
                    raise ValueError(f"join column {side!r} is not among the allowed columns")
        return self

    def is_in_period(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until
