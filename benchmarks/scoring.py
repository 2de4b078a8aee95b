"""Benchmark: scoring with the registered champion of atop:any:1 (after `make run`).

- rank: every at-risk dyad of one year (about 15,000 for 2019) scored and ranked, after the
  model is loaded and the year's rows are read (``foedus.models.scoring.year_forecasts``);
  target under 1 s here;
- score: `foedus score A B --json` as a whole process from a cold start (interpreter, imports,
  model load, the year's rows, threat details, SHAP); target under 5 s here.

Medians over the runs, as JSON on stdout and in benchmarks/results/scoring.json. Run on
demand: `.venv/bin/python benchmarks/scoring.py [--repeat N] [--year Y]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import write_report  # noqa: E402

PAIR = ("India", "Israel")


def rank_seconds(year: int, repeat: int) -> tuple[list[float], int]:
    from foedus.models.scoring import year_forecasts
    from foedus.scoring import year_context

    context = year_context("atop:any:1", year)  # loads the model and the year's rows (builds if needed)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        forecasts = year_forecasts(context.model, context.rows)
        forecasts.sort_values("probability", ascending=False)
        times.append(time.perf_counter() - start)
    return times, len(forecasts)


def score_process_seconds(year: int, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "foedus", "score", *PAIR, "--year", str(year), "--json"], cwd=ROOT,
                       check=True, capture_output=True, env=os.environ.copy())
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--year", type=int, default=2019)
    args = parser.parse_args()
    rank, dyads = rank_seconds(args.year, args.repeat)
    score = score_process_seconds(args.year, args.repeat)
    report = {
        "benchmark": f"scoring with the atop:any:1 champion, {args.year}",
        "at_risk_dyads": dyads,
        "rank_year_seconds": rank, "median_rank_year_seconds": statistics.median(rank),
        "score_pair_process_seconds": score, "median_score_pair_process_seconds": statistics.median(score),
        "pair": list(PAIR),
    }
    write_report("scoring", report)


if __name__ == "__main__":
    main()
