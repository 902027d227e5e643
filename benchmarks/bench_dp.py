"""Benchmark: our DP release against SmartNoise SQL on grouped count, sum and mean.

Same 1,000,000 generated rows (one row per entity, five districts, cost in
[0, 1000]), same queries, same ε (SmartNoise's own reported cost per query,
so ours spends no more), several repetitions each. Reports the time ratio and
the mean absolute error against the exact answers.

SmartNoise SQL pins an older OpenDP than ours, so it runs in ``.venv-bench``
(``benchmarks/requirements.txt``) as a child process of this script, which
runs in the project's ``.venv``::

    .venv/bin/python benchmarks/bench_dp.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

QUERIES = {
    "count": "SELECT district, COUNT(*) AS v FROM visits GROUP BY district",
    "sum": "SELECT district, SUM(cost) AS v FROM visits GROUP BY district",
    "mean": "SELECT district, AVG(cost) AS v FROM visits GROUP BY district",
}
DISTRICTS = ["A", "B", "C", "D", "E"]
BENCH_PYTHON = Path(__file__).resolve().parent.parent / ".venv-bench" / "bin" / "python"


def make_data(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    return pd.DataFrame(
        {
            "patient_id": np.char.add("P", np.arange(rows).astype(str)),
            "district": rng.choice(DISTRICTS, rows, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
            "cost": rng.uniform(0, 1000, rows),
        }
    )


def exact(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    grouped = df.groupby("district")["cost"]
    return {
        "count": grouped.size().astype(float).to_dict(),
        "sum": grouped.sum().to_dict(),
        "mean": grouped.mean().to_dict(),
    }


def run_smartnoise(path: Path, repeats: int) -> dict[str, dict]:
    """Child-process side, in .venv-bench: time and answers of SmartNoise SQL."""
    import snsql

    df = pd.read_parquet(path)
    meta = {
        "Bench": {
            "bench": {
                "visits": {
                    "max_ids": 1,
                    "row_privacy": False,
                    "censor_dims": False,
                    "patient_id": {"type": "string", "private_id": True},
                    "district": {"type": "string"},
                    "cost": {"type": "float", "lower": 0, "upper": 1000},
                }
            }
        }
    }
    reader = snsql.from_df(df, privacy=snsql.Privacy(epsilon=1.0, delta=1e-6), metadata=meta)
    out = {}
    for name, sql in QUERIES.items():
        sql = sql.replace("FROM visits", "FROM bench.visits")
        seconds, answers = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            rows = reader.execute(sql)
            seconds.append(time.perf_counter() - start)
            answers.append({r[0]: float(r[1]) for r in rows[1:]})
        eps, delta = reader.get_privacy_cost(sql)
        out[name] = {
            "seconds": seconds,
            "answers": answers,
            "epsilon": float(eps),
            "delta": float(delta),
        }
    return out


def run_ours(path: Path, epsilons: dict[str, float], repeats: int) -> dict[str, dict]:
    """Our side: the agreement's database is built once (as at provisioning, timed apart),
    then each release is planned, prepared and executed on it."""
    import duckdb

    from export_review.dp_plan import plan_query
    from export_review.dp_release import execute, prepare
    from query_guard.compile import build_agreement_database
    from sandbox.contracts import load_agreement_text
    from sandbox.contracts.catalog_entry import CatalogEntry

    entry = CatalogEntry.model_validate(
        {
            "name": "visits",
            "title": "Visits",
            "provider": "bench",
            "domain": "health",
            "summary": "benchmark",
            "open_class": "conditional",
            "conditions": "bench",
            "update_frequency": "monthly",
            "contact": "bench@example.org",
            "entity": "patient_id",
            "columns": [
                {"name": "patient_id", "type": "VARCHAR", "sensitivity": "identifier"},
                {"name": "district", "type": "VARCHAR", "values": DISTRICTS},
                {"name": "cost", "type": "DOUBLE", "bounds": [0, 1000]},
            ],
        }
    )
    agreement = load_agreement_text(
        "id: BENCH\ntitle: t\nprovider: bench\nresearchers: [a]\npurpose: p\n"
        "valid_from: 2026-01-01\nvalid_until: 2026-12-31\n"
        "datasets: {visits: {columns: [district, cost]}}\n"
    )
    start = time.perf_counter()
    database = build_agreement_database(
        agreement,
        {"visits": entry},
        key=b"b" * 32,
        out_path=path.with_name("agreement.duckdb"),
        sources={"visits": path},
    )
    out: dict[str, dict] = {"build": {"seconds": [time.perf_counter() - start]}}
    conn = duckdb.connect(str(database), read_only=True)
    for name, sql in QUERIES.items():
        seconds, answers = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            plan = plan_query(sql, agreement, {"visits": entry})
            prepared = prepare(
                plan, epsilon=epsilons[name], max_contributions=1, selection_delta=0.0
            )
            result = execute(conn, prepared)
            seconds.append(time.perf_counter() - start)
            answers.append({r[0]: float(r[1]) for r in result.rows})
        out[name] = {"seconds": seconds, "answers": answers, "epsilon": prepared.epsilon}
    return out


def mae(answers: list[dict[str, float]], truth: dict[str, float]) -> float:
    return statistics.fmean(abs(a.get(k, 0.0) - v) for a in answers for k, v in truth.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smartnoise", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smartnoise:  # child process in .venv-bench
        print(json.dumps(run_smartnoise(args.smartnoise, args.repeats)))
        return
    df = make_data(args.rows)
    truth = exact(df)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "visits.parquet"
        df.to_parquet(path)
        child = subprocess.run(
            [
                str(BENCH_PYTHON),
                __file__,
                "--smartnoise",
                str(path),
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        peer = json.loads(child.stdout.strip().splitlines()[-1])
        ours = run_ours(path, {n: peer[n]["epsilon"] for n in QUERIES}, args.repeats)
    print(f"DP release, {args.rows} rows, {args.repeats} repeats, median seconds; MAE vs exact")
    print(
        f"(ours: agreement database built once in {ours['build']['seconds'][0]:.2f} s, "
        "as at provisioning: pseudonyms and contribution rank; not in the release times)"
    )
    print(
        f"{'query':6} {'eps':>4} {'ours s':>8} {'snsql s':>8} {'speed-up':>8} "
        f"{'ours MAE':>10} {'snsql MAE':>10}"
    )
    for name in QUERIES:
        o, p = ours[name], peer[name]
        t_o, t_p = statistics.median(o["seconds"]), statistics.median(p["seconds"])
        print(
            f"{name:6} {p['epsilon']:>4g} {t_o:>8.3f} {t_p:>8.3f} {t_p / t_o:>7.1f}x "
            f"{mae(o['answers'], truth[name]):>10.3f} {mae(p['answers'], truth[name]):>10.3f}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
