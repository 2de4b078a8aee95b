"""Benchmark: a cold full build (all feature families and labels, 1816-2024).

Cold means a fresh process and an empty cache: the verified raw files are copied into a
temporary data folder, so every source is parsed from its .rda/.csv again. Reports wall time,
CPU time (all threads) and peak resident memory of the build process as JSON (stdout and
benchmarks/results/), with the median over the runs: other processes make single runs noisy.
Run on demand: `.venv/bin/python benchmarks/build_features.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import write_report  # noqa: E402

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from foedus.jobs import build
result = build("atop:any:1", force=True)
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024, "rows": len(result.table), "columns": result.table.shape[1]}))
"""


def one_run(raw: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(raw, Path(tmp) / "raw")
        env = {**os.environ, "FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": tmp}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        measured = json.loads(out.stdout.strip().splitlines()[-1])
        measured["process_seconds"] = time.perf_counter() - start  # including interpreter start and imports
        return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from foedus.infra.config import Paths
    from foedus.jobs import fetch_data

    paths = Paths.discover()
    fetch_data(paths=paths, show_progress=False)
    runs = [one_run(paths.raw) for _ in range(args.repeat)]
    report = {
        "benchmark": "cold full build, atop:any:1, 1816-2024, all families",
        "runs": runs,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "median_process_seconds": statistics.median(r["process_seconds"] for r in runs),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "best_seconds": min(r["seconds"] for r in runs),
        "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
    write_report("build_features", report)


if __name__ == "__main__":
    main()
