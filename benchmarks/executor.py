"""Benchmark: backtests through the executor (``foedus.models.executor``).

- speed-up: the default backtest of both main labels (ATOP any and defense, every model, the five
  blocks, logged to MLflow with the fold models, as ``foedus run`` backtests them) serially
  (``--jobs 1``: LightGBM and HistGradientBoosting use their two threads), serially with one
  thread for everything, and on two worker processes (``--jobs 2``), each in a fresh process
  with a tracking store of its own; ``--quick``: the first two blocks only;
- overhead: 200 no-op tasks on two workers (per task, over a loop in this process), the
  cluster's start, and one table read and verified per worker;
- fan-out: eight one-thread workers on this machine backtesting a small grid (four models, four
  early blocks of defense), with the number of workers that computed a fold.

The tables are built first if needed (not timed). Figures as JSON on stdout and in
benchmarks/results/executor.json (executor_quick.json with --quick). Run on demand:
`.venv/bin/python benchmarks/executor.py [--quick] [--skip-speedup]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import write_report  # noqa: E402

LABELS = ("atop:any:1", "atop:defense:1")
QUICK_FOLDS = "1919-1938,1946-1969"
FANOUT = {"spec": "atop:defense:1", "models": "base-rate,logit-threat,logit-literature,hist-gradient-boosting",
          "folds": "1919-1925,1926-1932,1933-1938,1946-1955", "workers": 8}


def noop(x):
    return x


def table_and_memory(ref) -> tuple[float, int]:
    """A task: read and verify the table (seconds), and the worker's resident memory after (MB)."""
    import psutil
    from foedus.models.backtest import load_table

    started = time.perf_counter()
    load_table(ref)
    return time.perf_counter() - started, psutil.Process().memory_info().rss >> 20


def measure_backtests(jobs: int, folds: str | None) -> dict:
    """Backtest both labels through one executor (in this process: a child of the benchmark)."""
    from foedus.jobs import backtest_request, run_backtests

    requests = [backtest_request(spec, None, folds) for spec in LABELS]
    finished = []
    started = time.perf_counter()
    results = run_backtests(requests, jobs=jobs, on_model=lambda r: finished.append(
        (r.label_spec, r.model, round(time.perf_counter() - started, 1))))
    seconds = time.perf_counter() - started
    folds = [(result, fold) for label in results for result in label for fold in result.folds]
    pids = {fold.executed_by["worker_pid"] for _, fold in folds}
    epoch = min(fold.ran[0] for _, fold in folds)
    return {"jobs": jobs, "seconds": round(seconds, 1), "tasks": len(folds), "worker_pids": len(pids),
            "task_seconds": round(sum(fold.ran[1] - fold.ran[0] for _, fold in folds), 1),
            "tasks_ran": [(r.label_spec, r.model, fold.fold.name, fold.executed_by["worker_pid"],
                           round(fold.ran[0] - epoch, 1), round(fold.ran[1] - epoch, 1)) for r, fold in folds],
            "logged_at": finished,
            "primary": {f"{r.label_spec} {r.model}": r.slices["continuing_dyad"]["average_precision"]
                        for label in results for r in label}}


def in_child(what: str, *args: str) -> dict:
    """Run ``--measure what args`` of this script in a fresh process with its own tracking store."""
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(store) / 'mlflow.db'}"}
        done = subprocess.run([sys.executable, __file__, "--measure", what, *args], env=env, cwd=ROOT,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{what} {args} failed:\n{done.stderr[-3000:]}")
    # the 1-minute load average before and after: above the measurement's own processes, something
    # else was competing for the cores
    return {**json.loads(done.stdout.strip().splitlines()[-1]),
            "load_average": [round(before, 2), round(os.getloadavg()[0], 2)]}


def measure_overhead() -> dict:
    from foedus.features.build import ensure_built
    from foedus.models.backtest import TableRef
    from foedus.models.executor import executor

    n = 200
    started = time.perf_counter()
    [noop(i) for i in range(n)]
    loop = time.perf_counter() - started
    with executor(jobs=2) as ex:
        started = time.perf_counter()
        ex.map(noop, range(2))  # starts the cluster
        start = time.perf_counter() - started
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            ex.map(noop, range(n))
            runs.append(time.perf_counter() - started)
        path, provenance = ensure_built(LABELS[1])
        ref = TableRef.of(path, provenance)
        reads = ex.map(table_and_memory, [ref, ref])  # one per worker, at once
    best = min(runs)
    return {"cluster_start_s": round(start, 2), "noop_tasks": n, "noop_seconds": [round(r, 3) for r in runs],
            "per_task_ms": round((best - loop) / n * 1000, 2),
            "table_read_and_verify_s": [round(r[0], 2) for r in reads], "worker_rss_mb": [r[1] for r in reads]}


def measure_fanout() -> dict:
    from foedus.jobs import backtest_request, run_backtests

    started = time.perf_counter()
    (results,) = run_backtests([backtest_request(FANOUT["spec"], FANOUT["models"], FANOUT["folds"])],
                               jobs=FANOUT["workers"])
    seconds = time.perf_counter() - started
    per_worker: dict[str, int] = {}
    for result in results:
        for fold in result.folds:
            per_worker[fold.executed_by["worker_pid"]] = per_worker.get(fold.executed_by["worker_pid"], 0) + 1
    return {**FANOUT, "seconds": round(seconds, 1), "tasks": sum(per_worker.values()),
            "workers_used": len(per_worker), "tasks_per_worker": sorted(per_worker.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"folds {QUICK_FOLDS} only")
    parser.add_argument("--skip-speedup", action="store_true", help="only the overhead and the fan-out")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # a child's one measurement
    args = parser.parse_args()
    if args.measure:
        what, *rest = args.measure
        if rest[2:] == ["one-thread"]:  # the serial run with one thread for everything, LightGBM too
            import ctypes

            from lightgbm.basic import _LIB
            from threadpoolctl import threadpool_limits

            _LIB.LGBM_SetMaxThreads(ctypes.c_int(1))
            threadpool_limits(limits=1)
        figures = {"backtests": lambda: measure_backtests(int(rest[0]), rest[1] or None),
                   "overhead": measure_overhead, "fanout": measure_fanout}[what]()
        print(json.dumps(figures))
        return

    from foedus.features.build import ensure_built

    for spec in LABELS:
        ensure_built(spec)  # built once, before any timing
    folds = QUICK_FOLDS if args.quick else ""
    report = {"what": "backtests of atop:any:1 and atop:defense:1, every model, "
                      + (f"folds {QUICK_FOLDS}" if args.quick else "the five default folds")}
    if not args.skip_speedup:
        serial = in_child("backtests", "1", folds)
        one_thread = in_child("backtests", "1", folds, "one-thread")
        two = in_child("backtests", "2", folds)
        same = serial["primary"] == two["primary"] == one_thread["primary"]
        report["speedup"] = {"serial_s": serial["seconds"], "jobs2_s": two["seconds"],
                             "speedup": round(serial["seconds"] / two["seconds"], 2),
                             "serial_one_thread_s": one_thread["seconds"],
                             "speedup_over_one_thread": round(one_thread["seconds"] / two["seconds"], 2),
                             "tasks": serial["tasks"], "same_numbers": same, "serial": serial,
                             "serial_one_thread": one_thread, "jobs2": two}
    report["overhead"] = in_child("overhead")
    report["fanout"] = in_child("fanout")
    write_report("executor_quick" if args.quick else "executor", report)


if __name__ == "__main__":
    main()
