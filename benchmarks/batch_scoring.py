"""Benchmark: batch scoring of a million pairs, `foedus score --input pairs.csv --output scored.csv`.

Needs a champion of atop:any:1 (after `make run`). Writes a CSV of ``--rows`` real pairs: two
states that were members of the system in the year, named by COW name, abbreviation or code,
over the ten ``YEARS``, with one row in a hundred that cannot be scored (an unknown state, a
year that is not one). It scores the file with the CLI as a whole process, twice: the file
itself, and its first ``BASELINE_ROWS`` rows (the same years, so the same model and forecasts
loaded: what any batch costs), and reports for each the wall time, rows per second and the
process's peak resident memory (its VmHWM at exit, Linux). The difference of the two peaks is
what the rows add, and the chunks bound it (``--chunk-rows``).

JSON on stdout and in benchmarks/results/batch_scoring.json. Run on demand:
`.venv/bin/python benchmarks/batch_scoring.py [--rows N] [--chunk-rows N]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import write_report  # noqa: E402

YEARS = (1914, 1939, 1950, 1962, 1975, 1990, 2000, 2010, 2018, 2019)
BASELINE_ROWS = 1_000
BAD_SHARE = 0.01


def write_pairs(path: Path, rows: int, registry, years=YEARS, seed: int = 7) -> pd.DataFrame:
    """Write ``rows`` pairs of states that were both members in their year (``registry``, a
    ``StateRegistry``), as the CSV ``path`` (``id,state_a,state_b,year``); a ``BAD_SHARE`` of
    them cannot be scored. Returns the pairs as COW codes (``ccode_a``, ``ccode_b``, ``year``,
    ``bad``) for checking the output. Whole arrays: no loop over rows."""
    rng = np.random.default_rng(seed)
    year = rng.choice(np.asarray(years), rows)
    ccode_a, ccode_b = np.zeros(rows, dtype="int64"), np.zeros(rows, dtype="int64")
    for y in years:  # two different members of the year
        members = np.array([c for c, s in registry.states.items() if s.is_member(y)])
        at = np.flatnonzero(year == y)
        first = rng.integers(0, len(members), len(at))
        second = (first + rng.integers(1, len(members), len(at))) % len(members)
        ccode_a[at], ccode_b[at] = members[first], members[second]
    forms = np.empty((3, 1000), dtype=object)  # name, abbreviation, code of every COW code
    for code, state in registry.states.items():
        forms[:, code] = state.name, state.abb, str(code)
    state_a = forms[rng.integers(0, 3, rows), ccode_a]
    state_b = forms[rng.integers(0, 3, rows), ccode_b]
    text_year = year.astype(str).astype(object)
    bad = rng.random(rows) < BAD_SHARE
    half = bad & (rng.random(rows) < 0.5)
    state_a[half] = "Atlantis"
    text_year[bad & ~half] = "19x0"
    frame = pd.DataFrame({"id": np.arange(1, rows + 1), "state_a": state_a, "state_b": state_b, "year": text_year})
    frame.to_csv(path, index=False)
    return pd.DataFrame({"ccode_a": ccode_a, "ccode_b": ccode_b, "year": year, "bad": bad})


# Runs `python -m foedus <args>` and, at exit, writes the process's peak resident memory (VmHWM,
# kB) to the file named first. Not the process's ru_maxrss: Linux carries over into it the memory
# of the process it was forked from (here a test run holding gigabytes), VmHWM only its own.
PEAK_WRAPPER = """
import atexit, runpy, sys
report = sys.argv.pop(1)
def write_peak():
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(write_peak)
sys.argv[0] = "foedus"
runpy.run_module("foedus", run_name="__main__", alter_sys=True)
"""


def run_with_peak(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[int, float, int, str]:
    """Run ``python -m foedus *args``: its exit code, wall seconds, peak resident memory in
    bytes (its VmHWM at exit, Linux) and its stderr."""
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "FOEDUS_DEBUG"}
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(report), *args], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        return done.returncode, seconds, int(report.read_text()) * 1024, done.stderr


def main() -> None:
    from foedus.features.states import load_registry

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=None)
    args = parser.parse_args()
    chunk = [] if args.chunk_rows is None else ["--chunk-rows", str(args.chunk_rows)]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        write_pairs(folder / "pairs.csv", args.rows, load_registry())
        written = time.perf_counter() - start
        pd.read_csv(folder / "pairs.csv", nrows=BASELINE_ROWS).to_csv(folder / "few.csv", index=False)
        runs = {}
        for name, rows in (("baseline", BASELINE_ROWS), ("all", args.rows)):
            source = folder / ("few.csv" if name == "baseline" else "pairs.csv")
            code, seconds, peak, stderr = run_with_peak(["score", "--input", str(source), "--output",
                                                         str(folder / "scored.csv"), *chunk])
            if code not in (0, 2) or "could not be scored" not in stderr:
                raise SystemExit(f"foedus score failed ({code}): {stderr}")
            runs[name] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
                          "peak_rss_mb": round(peak / 2**20, 1)}
        size = (folder / "pairs.csv").stat().st_size
    report = {
        "benchmark": f"foedus score --input: {args.rows:,} pairs over {len(YEARS)} years, atop:any:1 champion",
        "years": list(YEARS), "input_mb": round(size / 2**20, 1), "write_input_seconds": round(written, 2),
        "chunk_rows": args.chunk_rows or "default", "runs": runs,
        "rows_added_mb": round(runs["all"]["peak_rss_mb"] - runs["baseline"]["peak_rss_mb"], 1),
    }
    write_report("batch_scoring", report)


if __name__ == "__main__":
    main()
