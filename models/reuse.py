"""Finished work, found again: a backtest or final model whose inputs are identical to an
earlier finished run's is read from the tracking store, not computed again.

Each backtest parent run and each final-model run carries a ``reuse_key`` tag: a digest of
everything its numbers depend on (``reuse_key``): the table's build key (the data, the feature
code, the label spec and a present-day model's target year and staleness), the code of
``foedus.models``, the versions of the numerical libraries, the model and its hyperparameters
(or that they are tuned), the seed, the folds and the label delay. A later request with the
same key takes that run instead of computing (``foedus backtest/train/run --force``
recomputes). Only a FINISHED run counts, and only with every artifact it is read by: a run
killed half-way (RUNNING, or marked FAILED by ``recovery``) or damaged is never reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

REUSE_TAG = "reuse_key"
# what a backtest parent run must hold to be reused: what ``load_backtest`` reads, and what the
# report and the UI show of it
BACKTEST_ARTIFACTS = frozenset({"summary.md", "config.json", "predictions/all_folds.parquet", "metrics/slices.csv",
                                "metrics/folds.csv", "threat_without_alliance/threat_without_alliance.parquet",
                                "threat_without_alliance/onsets_without_threat.csv",
                                "threat_without_alliance/reasons.csv", "plots/pr_curves.png",
                                "plots/calibration.png"})


@functools.cache
def models_digest() -> str:
    """A digest of the source of ``foedus.models``: what fits, tunes and scores the models."""
    from foedus.features.provenance import source_digest

    return source_digest(Path(__file__).resolve().parent)


def reuse_key(kind: str, **inputs) -> str:
    """The digest of a run's ``inputs`` (JSON-able), its kind (``backtest``, ``train``), the
    models' code and the libraries' versions."""
    from foedus.models.tracking import environment

    material = {"kind": kind, "models_code": models_digest(), "libraries": environment().libraries,
                "python": environment().python, **inputs}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Reused:
    """An earlier run taken instead of computing: its id and when it started."""

    what: str  # "backtest" or "final model"
    run_id: str
    started: pd.Timestamp

    def describe(self) -> str:
        return (f"reused {self.what} {self.run_id} of {self.started:%Y-%m-%d %H:%M} UTC "
                "(same inputs; --force recomputes)")


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def _candidates(client: MlflowClient, experiment: str, kind: str, key: str) -> list:
    return client.search_runs([experiment], filter_string=f"tags.kind = '{kind}' and tags.{REUSE_TAG} = '{key}' "
                              "and attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                              max_results=20)


def find_backtest(experiment: str, key: str, n_folds: int, with_models: bool):
    """The newest finished, complete backtest parent run with ``key`` in ``experiment``, or None:
    its artifacts, ``n_folds`` finished fold runs each with its predictions and, ``with_models``,
    a ready logged model per fold."""
    client = MlflowClient()
    for run in _candidates(client, experiment, "backtest", key):
        if not BACKTEST_ARTIFACTS <= _artifacts(client, run.info.run_id):
            continue
        folds = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        if len(folds) != n_folds or any(f.info.status != "FINISHED" for f in folds):
            continue
        if any("predictions/predictions.parquet" not in _artifacts(client, f.info.run_id, "predictions")
               for f in folds):
            continue
        if with_models:
            ids = {f.info.run_id for f in folds}
            models = [m for m in client.search_logged_models([experiment]) if m.source_run_id in ids]
            if len(models) != n_folds or not all(str(m.status).endswith("READY") for m in models):
                continue
        return run
    return None


def find_final(experiment: str, key: str):
    """The newest finished final-model run with ``key`` whose registered version exists, is not
    marked incomplete and has been through the champion rule, or None."""
    from foedus.models.registry import DONE, PROMOTION
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    for run in _candidates(client, experiment, "train", key):
        name, version = run.data.tags.get("registered_name"), run.data.tags.get("registered_version")
        if not name or not version:
            continue
        try:
            found = client.get_model_version(name, version)
        except MlflowException:  # deleted since
            continue
        if found.tags.get(PROMOTION) == DONE and found.run_id == run.info.run_id:
            return run
    return None


def reused(what: str, run) -> Reused:
    return Reused(what, run.info.run_id, pd.Timestamp(run.info.start_time, unit="ms"))


def load_backtest(run):
    """The ``BacktestResult`` a finished backtest run holds (``find_backtest``), without its fitted
    models or SHAP sample: forecasts, metrics (pooled, by fold, by slice), hyperparameters, the
    threat-without-alliance lists. Its ``reused`` says which run it is."""
    import mlflow
    from foedus.models.backtest import BacktestResult, FoldResult
    from foedus.models.folds import parse_folds
    from foedus.models.metrics import score

    run_id = run.info.run_id

    def read(path: str):
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
        return pd.read_parquet(local) if path.endswith(".parquet") else (
            json.loads(Path(local).read_text()) if path.endswith(".json") else pd.read_csv(local))

    config, predictions = read("config.json"), read("predictions/all_folds.parquet")
    twa = read("threat_without_alliance/threat_without_alliance.parquet")
    owt = read("threat_without_alliance/onsets_without_threat.csv")
    by_fold = read("metrics/folds.csv").set_index("fold")
    slices = read("metrics/slices.csv").set_index("slice")
    folds = []
    for entry in config["folds"]:
        name = entry["test"]
        part = predictions[predictions["fold"] == name].drop(columns="fold").reset_index(drop=True)
        folds.append(FoldResult(
            parse_folds(name)[0], None, part, {k: float(v) for k, v in by_fold.loc[name].items()},
            int(entry["train_rows"]), tuple(entry["train_years"]),
            twa[twa["fold"] == name] if "fold" in twa else twa.iloc[:0],
            owt[owt["fold"] == name] if "fold" in owt else owt.iloc[:0], dict(entry["hyperparameters"])))
    tags = run.data.tags
    result = BacktestResult(
        model=config["model"], label_spec=config["label_spec"], seed=int(config["seed"]),
        params={}, folds=folds, predictions=predictions,
        pooled=score(predictions["label"], predictions["probability"], predictions["year"]),
        slices={name: {k: float(v) for k, v in row.items()} for name, row in slices.iterrows()},
        threat_without_alliance=twa, onsets_without_threat=owt, shap_sample=None, run_id=run_id,
        sweep={k.removeprefix("sweep_"): v for k, v in tags.items() if k.startswith("sweep_")} or None)
    result.reused = reused("backtest", run)
    return result
