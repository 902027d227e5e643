"""`make bench`: every benchmark, each printing ratios against a baseline measured in the
same run. Peers that pin clashing libraries (SmartNoise SQL, ACRO) run from
``.venv-bench``, which the Makefile creates; the spawn and capacity benchmarks need Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys

BENCHMARKS = [
    ("guard and query service vs raw DuckDB", ["-m", "benchmarks.bench_guard"]),
    ("query service hop", ["-m", "benchmarks.bench_service"]),
    ("guarded query on an encrypted vs a plain database", ["-m", "benchmarks.bench_encryption"]),
    ("one query worker under load vs a bare endpoint", ["-m", "benchmarks.bench_load"]),
    ("DP release vs SmartNoise SQL", ["benchmarks/bench_dp.py"]),
    ("table checks vs ACRO", ["benchmarks/bench_disclosure.py"]),
    ("spawn through our hub vs a bare DockerSpawner hub", ["-m", "benchmarks.bench_spawn"]),
    ("capacity: workspaces, workers, provisioning on Swarm", ["-m", "benchmarks.bench_capacity"]),
]
#: Those that need a Docker engine (the capacity model also its swarm and PostgreSQL).
NEEDS_DOCKER = {"benchmarks.bench_spawn", "benchmarks.bench_capacity"}


def main() -> int:
    failed = []
    for title, args in BENCHMARKS:
        print(f"\n=== {title} ===", flush=True)
        if args[-1] in NEEDS_DOCKER and not shutil.which("docker"):
            print("skipped: no Docker engine here")
            continue
        if subprocess.run([sys.executable, *args]).returncode != 0:
            failed.append(title)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
