"""Identifier checks and quality report at scale: ``python -m tests.catalog.bench_identifiers [N]``

Builds N synthetic visits (default 1 000 000) with valid resident ID numbers
and times the DuckDB detector against the plain-Python check over the unique
values, then the full quality report and reading the table back from Parquet
and CSV. Not a test: it asserts nothing about time.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sandbox.catalog.identifiers import detect_identifier_kind, is_resident_id
from sandbox.catalog.quality import quality_report
from sandbox.catalog.reading import read_table
from sandbox.demo.generate import fake_resident_id
from tests.catalog.conftest import make_entry


def visits(n: int) -> pa.Table:
    r = random.Random(1)
    born = [date(1950, 1, 1) + timedelta(days=r.randrange(25_000)) for _ in range(1000)]
    ids = [fake_resident_id(r, r.randrange(7), r.choice(born), r.random() < 0.5) for _ in range(n)]
    return pa.table(
        {
            "patient_id": ids,
            "visit_date": pa.array([date(2024, 1, 1) + timedelta(days=i % 700) for i in range(n)]),
            "district": pa.array(["梁溪区", "滨湖区"] * (n // 2) + ["梁溪区"] * (n % 2)),
            "cost": pa.array([float(i % 1200) for i in range(n)]),
            "visits": pa.array([i % 5 for i in range(n)], pa.int32()),
        }
    )


def timed(label: str, run: Callable[[], object]) -> None:
    start = time.perf_counter()
    run()
    print(f"{label:<42} {time.perf_counter() - start:7.2f} s")


def main(n: int) -> None:
    table, entry = visits(n), make_entry()
    unique = set(table["patient_id"].to_pylist())
    print(f"{n} rows, {len(unique)} distinct ID numbers")
    timed(
        "detect_identifier_kind (DuckDB SQL)", lambda: detect_identifier_kind(table["patient_id"])
    )
    timed("is_resident_id over unique values (Python)", lambda: sum(map(is_resident_id, unique)))
    timed("quality_report (5 columns)", lambda: quality_report(table, entry))
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(table, Path(tmp) / "v.parquet")
        pacsv.write_csv(table, Path(tmp) / "v.csv")
        timed("read_table from Parquet", lambda: read_table(Path(tmp) / "v.parquet", entry))
        timed("read_table from CSV", lambda: read_table(Path(tmp) / "v.csv", entry))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
