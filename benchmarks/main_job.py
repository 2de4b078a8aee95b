"""Benchmark: the main job (`foedus run`, what `make run` runs), cold and then warm.

- cold: an empty data folder (the raw files are copied from the mirror and verified, the tables
  built), an empty tracking store and report folder; `.venv` ready;
- warm: the same command again with nothing changed (the tables, backtests, final models and
  report are found, not computed).

Each is one `foedus run` process with its own data folder, store and reports
(``FOEDUS_DATA_DIR``, ``MLFLOW_TRACKING_URI``, ``FOEDUS_REPORTS_DIR``), so the project's own
``data/`` and ``mlruns/`` are not touched. The whole process tree is watched (Dask's worker
processes too): wall and CPU seconds, the peak of the tree's summed resident memory and the
largest single process's, overall and per step (the `[i/n] step` lines the job prints when
its output is not a terminal). JSON on stdout and in benchmarks/results/main_job.json.

Run on demand: `.venv/bin/python benchmarks/main_job.py [--keep DIR] [-- extra foedus run options]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
TICK = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _tree(pid: int) -> list[int]:
    """``pid`` and every process descending from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _stat(pid: int) -> tuple[float, float, float]:
    """(own CPU seconds, reaped children's CPU seconds, resident MB) of one process; zeros if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_MB
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK, rss


class Watch:
    """Samples a process tree's CPU and memory until stopped; ``mark`` closes a step."""

    def __init__(self, pid: int, every: float = 0.25):
        self.pid, self.every = pid, every
        self.cpu = 0.0  # the tree's CPU seconds so far (live processes and the reaped ones)
        # the tree's summed memory, the largest process's, the foedus process's own
        self.peak_tree = self.peak_process = self.peak_main = 0.0  # since the last mark
        self.max_tree = self.max_process = self.max_main = 0.0  # overall
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        pids = _tree(self.pid)
        stats = [_stat(p) for p in pids]
        own_main, reaped, _ = stats[0]
        # live descendants' own time, plus what the main process reaped (its cutime); a reaped
        # grandchild counts in its parent's cutime, which counts once its parent is reaped
        cpu = own_main + reaped + sum(s[0] for s in stats[1:])
        rss = [s[2] for s in stats]
        with self._lock:
            self.cpu = max(self.cpu, cpu)
            self.peak_tree = max(self.peak_tree, sum(rss))
            self.peak_process = max(self.peak_process, max(rss, default=0.0))
            self.peak_main = max(self.peak_main, rss[0] if rss else 0.0)
            self.max_main = max(self.max_main, self.peak_main)
            self.max_tree, self.max_process = max(self.max_tree, self.peak_tree), max(self.max_process,
                                                                                      self.peak_process)

    def _run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.every)

    def mark(self) -> tuple[float, float, float, float]:
        """(CPU seconds so far, peak tree MB, peak process MB and the foedus process's peak MB
        since the last mark)."""
        self.sample()
        with self._lock:
            out = (self.cpu, self.peak_tree, self.peak_process, self.peak_main)
            self.peak_tree = self.peak_process = self.peak_main = 0.0
        return out

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def timed_run(env: dict, extra: list[str]) -> dict:
    """One `foedus run`, its output read line by line: totals and per-step figures."""
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "foedus"), "run", *extra], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    watch = Watch(process.pid)
    steps, current, last_cpu, last_wall, tail = [], "start-up (imports, tracking store)", 0.0, started, []
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-40:]
        match = STEP.match(line.strip())
        if match:
            now, (cpu, peak_tree, peak_process, peak_main) = time.monotonic(), watch.mark()
            steps.append({"step": current, "wall_s": round(now - last_wall, 2), "cpu_s": round(cpu - last_cpu, 2),
                          "peak_rss_tree_mb": round(peak_tree), "peak_rss_process_mb": round(peak_process),
                          "peak_rss_foedus_mb": round(peak_main)})
            current, last_cpu, last_wall = match.group(3), cpu, now
    code = process.wait()
    now = time.monotonic()
    cpu, peak_tree, peak_process, peak_main = watch.mark()
    watch.stop()
    # the kernel's total for the reaped process tree, beside the sampled one (``cpu``)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    steps.append({"step": current, "wall_s": round(now - last_wall, 2), "cpu_s": round(cpu - last_cpu, 2),
                  "peak_rss_tree_mb": round(peak_tree), "peak_rss_process_mb": round(peak_process),
                  "peak_rss_foedus_mb": round(peak_main)})
    return {"exit_code": code, "wall_s": round(now - started, 2), "cpu_s": round(cpu, 2),
            "cpu_s_rusage": round(children.ru_utime + children.ru_stime - before.ru_utime - before.ru_stime, 2),
            "peak_rss_tree_mb": round(watch.max_tree), "peak_rss_process_mb": round(watch.max_process),
            "peak_rss_foedus_mb": round(watch.max_main), "steps": steps,
            "output_tail": tail if code else tail[-3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temporary one).")
    parser.add_argument("extra", nargs="*", help="Options passed to foedus run (after --).")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="foedus-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(folder / "data"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
           "FOEDUS_REPORTS_DIR": str(folder / "reports"), "COLUMNS": "160"}
    env.pop("FOEDUS_KILL_AT", None)
    (folder / "mlruns").mkdir(exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {"commit": commit, "cores": os.cpu_count(), "folder": str(folder), "options": args.extra}
    for name in ("cold", "warm"):
        result[name] = timed_run(env, args.extra)
        print(f"{name}: {result[name]['wall_s']} s wall, {result[name]['cpu_s']} s CPU, peak RSS "
              f"{result[name]['peak_rss_tree_mb']} MB (tree) / {result[name]['peak_rss_process_mb']} MB (process), "
              f"exit {result[name]['exit_code']}", file=sys.stderr, flush=True)
        if result[name]["exit_code"]:
            break
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / "main_job.json"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, target)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
