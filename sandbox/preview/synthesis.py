"""Drawing a synthetic sample from released marginals.

Sampling is post-processing of a DP release: it reads only the stored noisy
marginals, never the data, so its randomness needs no privacy proof and comes
from numpy's Generator seeded from the operating system's entropy. Columns
are drawn independently of each other: the preview shows each column's shape
and nothing about how columns go together.

Identifier columns get placeholders that look like the real kind (resident ID
numbers, unified social credit codes, with valid check characters, so that
software sees what it will meet) but come from region 99, which does not
exist in GB/T 2260, and are numbered by row: they carry no information.

Every row carries a ``SYNTHETIC_PREVIEW`` column (upper case, so it can
never clash with a catalogue column); :mod:`sandbox.preview.files` adds the
other labels.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np

from sandbox.catalog.identifiers import (
    CREDIT_CODE_CHARSET,
    credit_code_check_char,
    resident_id_check_char,
)

#: Administrative division code of the placeholders: province 99 does not exist.
PLACEHOLDER_REGION = "999999"
LABEL_COLUMN = "SYNTHETIC_PREVIEW"
LABEL_VALUE = "合成 SYNTHETIC"
_INTEGERS = ("BIGINT", "INTEGER")


def resident_id_placeholder(i: int) -> str:
    """The ``i``-th placeholder resident ID number: region 99, check character valid."""
    born = date(2000, 1, 1) + timedelta(days=i // 1000)
    body = f"{PLACEHOLDER_REGION}{born:%Y%m%d}{i % 1000:03d}"
    return body + resident_id_check_char(body)


def credit_code_placeholder(i: int) -> str:
    """The ``i``-th placeholder credit code: an enterprise (91) of region 99, check valid."""
    digits = []
    for _ in range(9):
        i, rest = divmod(i, len(CREDIT_CODE_CHARSET))
        digits.append(CREDIT_CODE_CHARSET[rest])
    body = "91" + PLACEHOLDER_REGION + "".join(reversed(digits))
    return body + credit_code_check_char(body)


def _placeholders(kind: str | None, rows: int) -> list[str]:
    make = {"resident_id": resident_id_placeholder, "credit_code": credit_code_placeholder}.get(
        kind or "", lambda i: f"PREVIEW{i:011d}"
    )
    return [make(i) for i in range(rows)]


def _draw(rng: np.random.Generator, counts: Sequence[int], rows: int) -> np.ndarray:
    """Cell indices drawn in proportion to the noisy counts (negatives count as 0)."""
    weights = np.clip(np.asarray(counts, dtype=float), 0, None)
    if weights.sum() == 0:
        weights = np.ones(len(counts))
    return rng.choice(len(counts), size=rows, p=weights / weights.sum())


def _from_bins(rng: np.random.Generator, column: dict[str, Any], rows: int) -> list[str]:
    edges = column["edges"]
    cells = _draw(rng, column["counts"], rows)
    lows = np.asarray(edges[:-1])[cells]
    highs = np.asarray(edges[1:])[cells]
    values = lows + rng.random(rows) * (highs - lows)
    if column["type"] in _INTEGERS:
        first, last = np.ceil(edges[0]), np.floor(edges[-1])
        return [str(int(v)) for v in np.clip(np.floor(values), first, last)]
    return [f"{v:.2f}" for v in values]


def _from_months(rng: np.random.Generator, column: dict[str, Any], rows: int) -> list[str]:
    months = list(column["months"])
    if not months or max(column["months"].values()) <= 0:
        return [""] * rows
    chosen = _draw(rng, list(column["months"].values()), rows)
    out = []
    for m, day_draw in zip(chosen, rng.random(rows), strict=True):
        year, month = (int(p) for p in months[m].split("-"))
        day = 1 + int(day_draw * calendar.monthrange(year, month)[1])
        out.append(f"{year:04d}-{month:02d}-{day:02d}")
    if column["type"] == "TIMESTAMP":
        out = [f"{d} 00:00:00" for d in out]
    return out


def sample_column(rng: np.random.Generator, column: dict[str, Any], rows: int) -> list[str]:
    """``rows`` synthetic values of one released column, as CSV text ("" when withheld)."""
    how = column["how"]
    if how == "values":
        categories = column["categories"]
        return [categories[c] for c in _draw(rng, column["counts"], rows)]
    if how == "bins":
        return _from_bins(rng, column, rows)
    if how == "months":
        return _from_months(rng, column, rows)
    if how == "identifier":
        return _placeholders(column.get("identifier_kind"), rows)
    return [""] * rows


def sample_csv(columns: list[dict[str, Any]], rows: int) -> str:
    """The synthetic sample as CSV text: the label column, then every catalogue column."""
    rng = np.random.default_rng()  # seeded from the OS; post-processing only
    drawn = [sample_column(rng, c, rows) for c in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([LABEL_COLUMN, *(c["name"] for c in columns)])
    for values in zip(*drawn, strict=True):
        writer.writerow([LABEL_VALUE, *values])
    return out.getvalue()
