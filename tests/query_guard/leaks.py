"""Assert that an executed result holds nothing that must never leave the guard."""

from __future__ import annotations

import pyarrow as pa

from tests.query_guard.data import FILTERED_CANARY, HIDDEN_CANARY, SMALL_DISTRICT


def assert_no_leak(table: pa.Table, raw_ids: list[str], mode: str) -> None:
    forbidden = {HIDDEN_CANARY, FILTERED_CANARY, *raw_ids}
    if mode == "aggregate":
        forbidden.add(SMALL_DISTRICT)
    for column in table.columns:
        for value in column.to_pylist():
            text = str(value)
            assert not any(f in text for f in forbidden), "a protected value reached the result"
