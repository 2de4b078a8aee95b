"""A data folder with the ATOP defense table built once, and a look into an MLflow store:
what the fault and concurrency tests start from and check."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.pipelines.cli_helpers import ROOT, seeded_store

SPEC = "atop:defense:1"
EXPERIMENT = "foedus-onset-atop_defense_h1"
REGISTERED = "foedus-onset-atop_defense_h1"
FOLDS = "1990-1994,1995-1999"  # two short test blocks: a backtest of base-rate takes seconds
# The table's years the backtests and trains of these tests use (`--first/--last`): the store
# and the processes are their point, not the fits; a third of the full table's rows.
SPAN = (1970, 1999)
YEARS = ("--first", str(SPAN[0]), "--last", str(SPAN[1]))


def built_data(folder: Path, paths, built) -> Path:
    """``folder/data``: the session's raw files, their readers' caches and the built defense
    tables, full (for scoring) and of ``SPAN`` (``built``, the session fixture: each built once
    per session), copied; foedus finds each build by its key and checksum rather than compute
    it again."""
    tables = [built(SPEC)[0], built(SPEC, years=SPAN)[0]]
    data = folder / "data"
    shutil.copytree(paths.raw, data / "raw")
    if paths.interim.is_dir():  # none yet in a worker whose first build was copied from another's
        shutil.copytree(paths.interim, data / "interim")
    (data / "processed").mkdir()
    for table in tables:
        for item in (table, table.with_suffix(".json")):
            shutil.copy2(item, data / "processed" / item.name)
    return data


def env_for(data: Path, store: Path, seed: bool = True, **extra) -> dict:
    """A foedus process's environment: this data folder, this store (its empty database made
    beforehand, ``seeded_store``, unless ``seed`` is false or ``extra`` names another), nothing
    from outside."""
    if seed and "MLFLOW_TRACKING_URI" not in extra:
        seeded_store(store)
    return {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(data), "FOEDUS_MIRROR": str(data / "no-mirror"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}", "OMP_WAIT_POLICY": "PASSIVE",
            "FOEDUS_KILL_AT": "", **extra}


def start(*args, env: dict) -> subprocess.Popen:
    """``foedus <args>`` started in the background, its output captured."""
    full = {**os.environ, **env}
    full.pop("FOEDUS_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "foedus", *args], env=full, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def killed(result) -> bool:
    """Did the process die of SIGKILL?"""
    return result.returncode == -signal.SIGKILL


def client_for(store: Path):
    """An MlflowClient on ``store`` (tracking and registry), without touching this process's MLflow setup."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{store / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs(client, **where) -> list:
    """Every run of the defense experiment (parents and folds), oldest first; ``status=`` filters."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"], max_results=1000)
    status = where.get("status")
    return [r for r in found if status is None or r.info.status == status]


def artifacts(client, run_id: str, path: str = "") -> set[str]:
    """Every artifact file of a run, recursively, by path."""
    out = set()
    for item in client.list_artifacts(run_id, path or None):
        out |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


PARENT_ARTIFACTS = {"summary.md", "config.json", "predictions/all_folds.parquet", "metrics/slices.csv",
                    "metrics/folds.csv", "threat_without_alliance/reasons.csv", "plots/pr_curves.png",
                    "plots/calibration.png"}
FOLD_ARTIFACTS = {"config.json", "predictions/predictions.parquet"}


def assert_complete_backtest(client, parent, folds: int = 2) -> None:
    """A finished backtest parent run with its headline metrics and artifacts, and ``folds``
    finished fold runs each with its metrics, predictions and model."""
    assert parent.info.status == "FINISHED", parent.info
    assert parent.data.metrics.get("continuing_dyads_average_precision") is not None, parent.data.metrics
    assert PARENT_ARTIFACTS <= artifacts(client, parent.info.run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == folds
    for child in children:
        assert child.info.status == "FINISHED"
        assert "all_rows_average_precision" in child.data.metrics
        assert FOLD_ARTIFACTS <= artifacts(client, child.info.run_id)
    ids = {c.info.run_id for c in children}
    models = [m for m in client.search_logged_models([parent.info.experiment_id]) if m.source_run_id in ids]
    assert len(models) == folds and all(str(m.status) in ("READY", "LoggedModelStatus.READY") for m in models), models
