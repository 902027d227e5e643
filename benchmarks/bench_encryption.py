"""Benchmark: the cost of encryption at rest on the guarded query path.

Run ``python -m benchmarks.bench_encryption`` (issue 15, item 2). The same data, agreement
and queries as :mod:`benchmarks.bench_guard` (``BENCH_GUARD_ROWS`` visits, cached under
``var/bench/``), built twice from the same Parquet files: the plain per-agreement database
``bench_guard`` times, and the same database encrypted by DuckDB under a data key
(:mod:`query_guard.at_rest`). Each query goes through the whole guarded path
(``check_query`` then the hardened ``run_query``) on each, in the same run:

- warm: best of :data:`REPEATS` on a connection kept open, as the query worker keeps it
  with its decisions and prepared plans (the buffer pool holds decrypted blocks, so this
  is mostly the engine's own work);
- cold: the first run on a freshly opened connection, so every block read is decrypted
  (the file itself is in the OS page cache either way: this times decryption, not disk).

Headline: the ratio of the summed times, encrypted / plain (target <= 1.2), warm and cold.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import duckdb

from benchmarks.bench_guard import (
    BENCH_DIR,
    BENCH_QUERIES,
    NOISE_SECRET,
    PSEUDONYM_KEY,
    ROWS,
    THREADS,
    Worker,
    guarded_path,
    prepare,
)
from query_guard.compile import build_agreement_database
from query_guard.engine import open_readonly
from query_guard.guard import GuardContext

REPEATS = 5
TARGET_RATIO = 1.2
#: A fixed data key: the benchmark's file is rebuilt only when the plain one is.
ENCRYPTION_KEY = b"bench-encryption-key-0123456789a"


def build_encrypted(ctx: GuardContext, plain: Path) -> Path:
    """The plain database's twin, encrypted; named after it, so it follows its rebuilds."""
    out = plain.with_name(plain.name.replace("agreement-", "encrypted-"))
    for stale in BENCH_DIR.glob(f"encrypted-{ROWS}-*.duckdb"):
        if stale != out:
            stale.unlink()
    if not out.exists():
        print(f"building {out} ...", flush=True)
        build_agreement_database(
            ctx.agreement,
            ctx.catalog,
            out_path=out,
            key=PSEUDONYM_KEY,
            noise_secret=NOISE_SECRET,
            encryption_key=ENCRYPTION_KEY,
        )
    return out


def _open(path: Path, key: bytes | None) -> duckdb.DuckDBPyConnection:
    temp = BENCH_DIR / "tmp" / path.stem
    temp.mkdir(parents=True, exist_ok=True)
    return open_readonly(
        path, threads=THREADS, temp_dir=temp, noise_secret=NOISE_SECRET, encryption_key=key
    )


def _seconds(sql: str, ctx: GuardContext, worker: Worker) -> float:
    started = time.perf_counter()
    guarded_path(sql, ctx, worker)
    return time.perf_counter() - started


def cold(sql: str, ctx: GuardContext, path: Path, key: bytes | None) -> float:
    worker = Worker(_open(path, key))
    try:
        return _seconds(sql, ctx, worker)
    finally:
        worker.conn.close()


def main() -> None:
    ctx, plain_db, _ = prepare()
    encrypted_db = build_encrypted(ctx, plain_db)
    sides = {"plain": (plain_db, None), "encrypted": (encrypted_db, ENCRYPTION_KEY)}
    size = {name: path.stat().st_size / 2**20 for name, (path, _) in sides.items()}
    print(
        f"{ROWS:,} visits; files: plain {size['plain']:.0f} MiB, encrypted "
        f"{size['encrypted']:.0f} MiB; {THREADS} threads; guarded path (decision + hardened "
        f"run_query); warm = best of {REPEATS} on an open connection, cold = first run on a "
        "new one"
    )
    workers = {name: Worker(_open(path, key)) for name, (path, key) in sides.items()}
    totals = {f"{side} {kind}": 0.0 for side in sides for kind in ("warm", "cold")}
    ratios: list[float] = []
    print(f"\n{'#':>3} {'plain s':>8} {'enc s':>8} {'ratio':>6} {'cold pl':>8} {'cold enc':>8}")
    try:
        for i, q in enumerate(BENCH_QUERIES, 1):
            row = {f"{name} cold": cold(q.sql, ctx, *side) for name, side in sides.items()}
            # The sides take turns, so a neighbour's load on this shared machine falls on both.
            runs = [
                {name: _seconds(q.sql, ctx, worker) for name, worker in workers.items()}
                for _ in range(REPEATS)
            ]
            row |= {f"{name} warm": min(run[name] for run in runs) for name in sides}
            for key_, value in row.items():
                totals[key_] += value
            ratios.append(row["encrypted warm"] / row["plain warm"])
            print(
                f"{i:>3} {row['plain warm']:>8.3f} {row['encrypted warm']:>8.3f} "
                f"{ratios[-1]:>6.2f} {row['plain cold']:>8.3f} {row['encrypted cold']:>8.3f}"
            )
    finally:
        for worker in workers.values():
            worker.conn.close()
    warm = totals["encrypted warm"] / totals["plain warm"]
    first = totals["encrypted cold"] / totals["plain cold"]
    print(f"\nmedian per-query ratio, warm: {statistics.median(ratios):.2f}")
    for label, ratio in (("warm", warm), ("cold", first)):
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"encrypted / plain, {label}, summed: {ratio:.2f} ({verdict} <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
