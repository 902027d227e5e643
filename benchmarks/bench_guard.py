"""Benchmark the guard: how much does the guarded path cost over plain DuckDB?

Run ``python -m benchmarks.bench_guard``. A 10-million-row visits dataset is
generated once (cached under ``var/bench/``) and compiled into a
per-agreement database. For each typical analytic query it times, on the same
data and the same thread count:

- ``raw``: the user's query on a plain DuckDB connection;
- ``rewritten``: the guard's rewritten query on that plain connection;
- ``guarded``: guard decision + hardened engine + Arrow result
  (``guarded_path``; the query service's HTTP hop is to be added there).

Targets: median guarded/rewritten <= 1.15; guard decision < 5% of query time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from query_guard import compile as compile_module
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly, run_query
from query_guard.guard import GuardContext, check_query
from sandbox.contracts import load_agreement_text
from sandbox.contracts.catalog_entry import CatalogEntry

ROWS = 10_000_000
THREADS = 2
REPEATS = 3
BENCH_DIR = Path("var/bench")

QUERIES = [
    "SELECT district, count(*) FROM visits GROUP BY district",
    "SELECT district, sum(cost), avg(cost) FROM visits GROUP BY district",
    "SELECT date_trunc('month', visit_date) AS m, count(*) FROM visits GROUP BY 1 ORDER BY 1",
    "SELECT year(visit_date) AS y, district, avg(cost) FROM visits GROUP BY ALL",
    "SELECT count(DISTINCT patient_id) FROM visits",
    "SELECT district, count(*) FROM visits WHERE cost > 500 GROUP BY district",
    "SELECT age_band, count(*), stddev(cost) FROM visits GROUP BY age_band",
    "SELECT CASE WHEN cost < 100 THEN 'low' WHEN cost < 1000 THEN 'mid' ELSE 'high' END AS b, "
    "count(*) FROM visits GROUP BY 1",
    "WITH p AS (SELECT patient_id, count(*) AS n, sum(cost) AS s FROM visits GROUP BY patient_id)"
    " SELECT n, count(*), avg(s) FROM p GROUP BY n ORDER BY n",
    "FROM visits SELECT district, month(visit_date) AS m, sum(cost) GROUP BY ALL",
    "SELECT district, avg(cost) FROM visits WHERE visit_date >= DATE '2025-01-01' GROUP BY 1",
    "SELECT quarter(visit_date) AS q, count(*) FROM visits WHERE district <> 'Binhu' GROUP BY q",
]

ENTRY = {
    "name": "visits",
    "title": "Visits",
    "provider": "p",
    "domain": "health",
    "summary": "s",
    "open_class": "conditional",
    "conditions": "c",
    "update_frequency": "monthly",
    "contact": "c",
    "entity": "patient_id",
    "columns": [
        {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
        {"name": "visit_date", "type": "DATE"},
        {"name": "district", "type": "VARCHAR"},
        {"name": "age_band", "type": "VARCHAR"},
        {"name": "cost", "type": "DOUBLE"},
    ],
}
AGREEMENT = """
id: AGR-BENCH
title: bench
provider: p
researchers: [r]
purpose: bench
mode: aggregate
valid_from: 2026-01-01
valid_until: 2027-01-01
datasets:
  visits: {columns: [patient_id, visit_date, district, age_band, cost]}
disclosure: {min_group_size: 10, max_result_rows: 10000}
"""


def generate(path: Path) -> None:
    """The synthetic 10M-row dataset (1M patients), written once."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (SELECT printf('3202%010d%04d', i % 1000000, i % 9973) AS patient_id,
                     DATE '2024-01-01' + CAST(hash(i) % 730 AS INTEGER) AS visit_date,
                     ['Liangxi','Xishan','Huishan','Binhu','Xinwu'][1 + i % 5] AS district,
                     ['0-17','18-39','40-64','65+'][CAST(1 + hash(i * 7) % 4 AS BIGINT)]
                       AS age_band,
                     round(CAST(hash(i * 13) % 500000 AS BIGINT) / 100.0, 2) AS cost
              FROM range({ROWS}) t(i)) TO '{path}' (FORMAT parquet)""")
    con.close()


def prepare() -> tuple[GuardContext, Path, Path]:
    """Dataset, per-agreement database, and a copy of it for the plain connection."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    source = BENCH_DIR / "visits.parquet"
    if not source.exists():
        generate(source)
    entry = CatalogEntry.model_validate({**ENTRY, "source": str(source.resolve())})
    ctx = GuardContext(load_agreement_text(AGREEMENT), {"visits": entry})
    built = _build_key()
    guarded_db = BENCH_DIR / f"agreement-{built}.duckdb"
    plain_db = BENCH_DIR / f"agreement-{built}-plain.duckdb"
    if not guarded_db.exists():
        for stale in BENCH_DIR.glob("agreement*.duckdb"):  # built by an older compiler
            stale.unlink()
        build_agreement_database(ctx.agreement, ctx.catalog, out_path=guarded_db, key=b"k" * 32)
    if not plain_db.exists():
        shutil.copyfile(guarded_db, plain_db)
    return ctx, guarded_db, plain_db


def _build_key() -> str:
    """What the cached database depends on: the compiler's source, the agreement and the
    entry; a change to any of them builds it again instead of timing a stale one."""
    digest = hashlib.sha256(Path(compile_module.__file__).read_bytes())
    digest.update(AGREEMENT.encode())
    digest.update(json.dumps(ENTRY, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def _best(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def guarded_path(sql: str, ctx: GuardContext, conn: duckdb.DuckDBPyConnection) -> pa.Table:
    """What a researcher's query costs end to end; extend with the query service's HTTP hop."""
    decision = check_query(sql, ctx)
    if decision.sql is None:
        raise SystemExit(f"benchmark query blocked: {decision.to_dict()}")
    return run_query(conn, decision.sql, timeout_s=300)


def main() -> None:
    ctx, guarded_db, plain_db = prepare()
    plain = duckdb.connect(str(plain_db), read_only=True, config={"threads": THREADS})
    hardened = open_readonly(
        guarded_db, threads=THREADS, memory_limit="2GB", temp_dir=BENCH_DIR / "tmp"
    )
    print(
        f"{'query':<60} {'raw s':>7} {'rewr s':>7} {'guard s':>7} "
        f"{'g/rewr':>7} {'g/raw':>7} {'decide%':>8}"
    )
    ratios, raw_ratios, shares = [], [], []
    for sql in QUERIES:
        rewritten = check_query(sql, ctx).sql
        raw = _best(lambda s=sql: plain.sql(s).to_arrow_table())
        rewr = _best(lambda s=rewritten: plain.sql(s).to_arrow_table())
        guarded = _best(lambda s=sql: guarded_path(s, ctx, hardened))
        decide = _best(lambda s=sql: check_query(s, ctx))
        ratios.append(guarded / rewr)
        raw_ratios.append(guarded / raw)
        shares.append(100 * decide / guarded)
        print(
            f"{sql[:60]:<60} {raw:7.3f} {rewr:7.3f} {guarded:7.3f} "
            f"{ratios[-1]:7.2f} {raw_ratios[-1]:7.2f} {shares[-1]:7.1f}%"
        )
    print(f"\nmedian guarded/rewritten-on-raw: {statistics.median(ratios):.3f} (target <= 1.15)")
    print(f"median guarded/user-query-on-raw: {statistics.median(raw_ratios):.3f}")
    print(
        f"median guard decision share of query time: {statistics.median(shares):.2f}% (target < 5%)"
    )


if __name__ == "__main__":
    main()
