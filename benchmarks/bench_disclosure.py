"""Benchmark: our table checks against ACRO on the same tables, cell by cell.

Generated rows (districts × hospitals, one rare hospital, a few dominant
costs), three tables: a frequency table, a sum and a mean of cost. For each
table both tools judge every cell; verdicts are compared on the rules both
implement (threshold, zeros, (n, k) dominance, p%), and times are compared
(median of several runs, after one warm-up).

ACRO runs in ``.venv-bench`` (``benchmarks/requirements.txt``) as a child of
this script, which runs in the project's ``.venv``::

    .venv/bin/python benchmarks/bench_disclosure.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TABLES = {"frequency": (None, None), "sum": ("cost", "sum"), "mean": ("cost", "mean")}
#: ACRO's check names -> ours, for the rules both implement.
SHARED = {
    "MinimumThresholdCheck": "threshold",
    "PresenceOfZeroCheck": "zeros",
    "NKCheck": "nk-rule",
    "PPercentCheck": "p-ratio",
}
BENCH_PYTHON = Path(__file__).resolve().parent.parent / ".venv-bench" / "bin" / "python"


def make_data(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    hospitals = [f"H{i}" for i in range(8)] + ["RARE"]
    weights = np.array([0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.05, 0.05 - 4e-5, 4e-5])
    df = pd.DataFrame(
        {
            "district": rng.choice([f"D{i}" for i in range(12)], rows),
            "hospital": rng.choice(hospitals, rows, p=weights / weights.sum()),
            "cost": rng.exponential(300.0, rows).round(2),
        }
    )
    dominant = rng.choice(rows, 6, replace=False)
    df.loc[dominant, "cost"] = 5e8  # a few contributions that dominate their cells
    return df


def _cells(outcome: pd.DataFrame) -> dict[str, list[str]]:
    return {
        f"{r}|{c}": sorted({SHARED[n] for n in SHARED if n in str(outcome.loc[r, c])})
        for r in outcome.index
        for c in outcome.columns
    }


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Seconds of ``repeats`` calls after one warm-up, and the last result."""
    result = call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def run_acro(path: Path, repeats: int) -> dict[str, dict]:
    """Child-process side, in .venv-bench: ACRO's verdicts and times."""
    import logging

    logging.disable(logging.CRITICAL)
    from acro import ACRO

    df = pd.read_parquet(path)
    acro = ACRO(suppress=False)
    out = {}
    for name, (values, aggfunc) in TABLES.items():
        seconds, _ = timed(
            partial(
                acro.crosstab,
                df.district,
                df.hospital,
                values=df[values] if values else None,
                aggfunc=aggfunc,
            ),
            repeats,
        )
        record = acro.results.get(acro.results.get_keys()[-1])
        out[name] = {"seconds": seconds, "cells": _cells(record.outcome)}
    return out


def run_ours(df: pd.DataFrame, repeats: int) -> dict[str, dict]:
    from export_review.disclosure import check_table

    out = {}
    for name, (values, aggfunc) in TABLES.items():
        seconds, check = timed(
            partial(
                check_table,
                df,
                index=["district"],
                columns=["hospital"],
                values=values,
                statistic=aggfunc or "count",
            ),
            repeats,
        )
        cells = {
            f"{r}|{c}": sorted(
                n for n, m in check.masks.items() if n in SHARED.values() and bool(m.loc[r, c])
            )
            for r in check.table.index
            for c in check.table.columns
        }
        out[name] = {"seconds": seconds, "cells": cells}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--acro", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.acro:  # child process in .venv-bench
        print(json.dumps(run_acro(args.acro, args.repeats)))
        return
    df = make_data(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        df.to_parquet(path)
        child = subprocess.run(
            [str(BENCH_PYTHON), __file__, "--acro", str(path), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
    peer = json.loads(child.stdout.strip().splitlines()[-1])
    ours = run_ours(df, args.repeats)
    print(f"Table checks, {args.rows} rows, 12x9 cells, {args.repeats} repeats, median seconds")
    print(
        f"{'table':10} {'ours s':>8} {'acro s':>8} {'speed-up':>8} {'cells':>6} "
        f"{'agree':>6} {'flagged (ours/acro)':>20}"
    )
    for name in TABLES:
        o, p = ours[name], peer[name]
        t_o, t_p = statistics.median(o["seconds"]), statistics.median(p["seconds"])
        agree = sum(o["cells"].get(k) == v for k, v in p["cells"].items())
        flagged = (
            sum(bool(v) for v in o["cells"].values()),
            sum(bool(v) for v in p["cells"].values()),
        )
        print(
            f"{name:10} {t_o:>8.4f} {t_p:>8.4f} {t_p / t_o:>7.1f}x {len(p['cells']):>6} "
            f"{agree:>6} {flagged[0]:>9}/{flagged[1]}"
        )
        for key, verdict in sorted(p["cells"].items()):
            if o["cells"].get(key) != verdict:
                print(f"    differs at {key}: ours {o['cells'].get(key)} acro {verdict}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
