"""Benchmark: what LightGBM's cost levers do to its skill, out of time.

For each label (ATOP any and defense), share of non-onsets kept (``--rates``), seed (``--seeds``)
and test block (the five of ``DEFAULT_FOLDS``), the fold is run as a backtest runs it: tuned on
its training years (``tune_lightgbm``: validation blocks, 3 tree sizes, rounds, climate), fitted
with the chosen parameters, forecasting the block. Each (label, rate, seed) then gets its pooled
continuing-dyad average precision and median onset percentile (the headline of ``foedus
compare``), and its CPU seconds. Tasks run on ``--workers`` processes of one thread each, as
backtest workers do.

Each task's result is kept in benchmarks/results/levers/ (so a stopped run resumes); the
summary goes to benchmarks/results/lightgbm_levers.json and stdout. ``--model
hist-gradient-boosting`` measures the same for scikit-learn's ensemble, whose sample is
weighted back to the whole data (benchmarks/results/levers-hist-gradient-boosting/ and
hist-gradient-boosting_levers.json). The tables are built first
if needed. Run on demand: `.venv/bin/python benchmarks/lightgbm_levers.py [--rates 1,0.3,0.1]
[--seeds 7,8,9] [--workers 2] [--inner-blocks 2] [--rounds 50,100,200 --learning-rate 0.1]`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
LABELS = ("atop:any:1", "atop:defense:1")
_tables: dict[str, pd.DataFrame] = {}


def _table(spec: str) -> pd.DataFrame:
    if spec not in _tables:
        from foedus.features.build import ensure_built
        from foedus.infra.config import Paths

        path, _ = ensure_built(spec, paths=Paths.discover())
        _tables[spec] = pd.read_parquet(path)
    return _tables[spec]


def run_task(spec: str, rate: float, seed: int, fold_name: str, model_name: str = "lightgbm",
             n_blocks: int | None = None, rounds: tuple[int, ...] | None = None,
             learning_rate: float | None = None) -> dict:
    """One (label, rate, seed, fold): tune, fit, forecast; the forecasts and what it cost.
    ``model_name`` hist-gradient-boosting: fitted on the sample, weighted back (no tuning).
    ``n_blocks``: LightGBM's validation blocks (default ``tuning.INNER_BLOCKS``); ``rounds`` and
    ``learning_rate``: its round counts and learning rate (default ``tuning.ROUNDS``, the estimator's)."""
    from foedus.models.backtest import fold_slices
    from foedus.models.estimators import LightGBMOnset, hist_gradient_boosting
    from foedus.models.folds import parse_folds
    from foedus.models.tuning import INNER_BLOCKS, tune_lightgbm
    from threadpoolctl import threadpool_limits

    fold = parse_folds(fold_name)[0]
    train, test = fold_slices(_table(spec), fold)
    started, cpu = time.time(), time.process_time()
    y = train["onset"].astype(int).to_numpy()
    with threadpool_limits(limits=1):
        if model_name == "hist-gradient-boosting":
            chosen = {}
            model = hist_gradient_boosting(seed, negative_rate=rate).fit(train, y)
        else:
            chosen = tune_lightgbm(train, seed=seed, negative_rate=rate, n_blocks=n_blocks or INNER_BLOCKS,
                                   rounds=rounds, learning_rate=learning_rate).params
            model = LightGBMOnset(seed=seed, **{**chosen, "num_threads": 1}).fit(train, y)
        probability = model.predict_proba(test)[:, 1]
    return {"spec": spec, "rate": rate, "seed": seed, "fold": fold_name, "params": chosen,
            "train_rows": len(train), "wall": time.time() - started, "cpu": time.process_time() - cpu,
            "forecasts": pd.DataFrame({"year": test["year"].to_numpy(), "onset": test["onset"].astype(int).to_numpy(),
                                       "new_dyad": test["new_dyad"].to_numpy(), "probability": probability})}


def _one_thread_worker() -> None:
    import ctypes

    from lightgbm.basic import _LIB

    _LIB.LGBM_SetMaxThreads(ctypes.c_int(1))


def _key(spec, rate, seed, fold) -> str:
    return f"{spec.replace(':', '_')}_r{str(rate).replace('.', 'p')}_s{seed}_{fold}"  # no dot: suffixes follow


def summarise(folder: Path, specs, rates, seeds, folds) -> list[dict]:
    """Pooled continuing-dyad AP and median onset percentile per (label, rate, seed) whose folds are all done."""
    from foedus.models.metrics import score

    rows = []
    for spec in specs:
        for rate in rates:
            for seed in seeds:
                parts = [folder / f"{_key(spec, rate, seed, f)}.parquet" for f in folds]
                if not all(p.exists() for p in parts):
                    continue
                meta = [json.loads(p.with_name(p.name.replace(".parquet", ".json")).read_text()) for p in parts]
                frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
                cont = frame[frame["new_dyad"] == 0]
                m = score(cont["onset"], cont["probability"], cont["year"])
                rows.append({"label": spec, "negative_rate": rate, "seed": seed,
                             "continuing_ap": round(m["average_precision"], 4),
                             "median_onset_percentile": round(m["median_onset_percentile"], 1),
                             "cpu_seconds": round(sum(x["cpu"] for x in meta), 1),
                             "chosen": {x["fold"]: x["params"] for x in meta}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.1,0.3,1.0")
    parser.add_argument("--seeds", default="7,8,9")
    parser.add_argument("--labels", default=",".join(LABELS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="lightgbm", choices=("lightgbm", "hist-gradient-boosting"))
    parser.add_argument("--inner-blocks", type=int, default=None,
                        help="LightGBM's validation blocks in each fold's tuning (default: tuning.INNER_BLOCKS)")
    parser.add_argument("--rounds", default=None, help="LightGBM's round counts to tune, e.g. 50,100,200 "
                        "(default: tuning.ROUNDS)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="LightGBM's learning rate (default: the estimator's)")
    args = parser.parse_args()
    rounds = tuple(int(r) for r in args.rounds.split(",")) if args.rounds else None
    from foedus.models.folds import DEFAULT_FOLDS

    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = args.labels.split(",")
    folds = [f.name for f in DEFAULT_FOLDS]
    variant = (f"-blocks{args.inner_blocks}" if args.inner_blocks else "") + (
        f"-rounds{'_'.join(map(str, rounds))}" if rounds else "") + (
        f"-lr{str(args.learning_rate).replace('.', 'p')}" if args.learning_rate else "")
    suffix = ("" if args.model == "lightgbm" else f"-{args.model}") + variant
    folder = OUT / f"levers{suffix}"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for spec in specs:
        _table(spec)  # built here, not in every worker
    todo = [(spec, rate, seed, fold) for rate in rates for seed in seeds for spec in specs for fold in reversed(folds)
            if not (folder / f"{_key(spec, rate, seed, fold)}.parquet").exists()]
    with ProcessPoolExecutor(args.workers, initializer=_one_thread_worker) as pool:
        futures = {pool.submit(run_task, *task, args.model, args.inner_blocks, rounds, args.learning_rate): task
                   for task in todo}
        for future in as_completed(futures):
            result = future.result()
            key = folder / _key(*futures[future])
            result.pop("forecasts").to_parquet(f"{key}.parquet.tmp")
            Path(f"{key}.json").write_text(json.dumps(result, default=str))
            os.replace(f"{key}.parquet.tmp", f"{key}.parquet")  # last: a parquet means the task is done
            print(json.dumps({k: result[k] for k in ("spec", "rate", "seed", "fold", "cpu", "params")}), flush=True)
    rows = summarise(folder, specs, rates, seeds, folds)
    table = pd.DataFrame(rows).drop(columns="chosen")
    summary = table.groupby(["label", "negative_rate"]).agg(
        ap_mean=("continuing_ap", "mean"), ap_min=("continuing_ap", "min"), ap_max=("continuing_ap", "max"),
        pct_mean=("median_onset_percentile", "mean"), pct_min=("median_onset_percentile", "min"),
        pct_max=("median_onset_percentile", "max"), cpu_mean=("cpu_seconds", "mean")).round(4).reset_index()
    print(table.to_string(index=False))
    print(summary.to_string(index=False))
    out = OUT / f"{args.model}_levers{variant}.json"
    out.write_text(json.dumps({"runs": rows, "summary": summary.to_dict("records"),
                               "machine": {"cores": os.cpu_count()}}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
