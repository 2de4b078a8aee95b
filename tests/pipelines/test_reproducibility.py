"""Two fresh clones of this repository, each running its own code on its own copy of the data
with the same seed, build identical feature tables and backtest to identical metrics; and every
run records what reproduces it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.cli_helpers import ROOT

SPEC = "atop:defense:1"
TABLE = "dyad_years_atop_defense_h1.parquet"
# lightgbm is the model most likely to differ between runs (threads, tuning); one early fold (small
# training years) keeps it fast
MODELS, FOLDS = "base-rate,logit-threat,lightgbm", "1919-1925"


def importable(clone: Path, shim: Path) -> Path:
    """``shim``: the clone's packages laid out under their import names, as its pyproject maps
    them (``foedus`` <- ``pipelines/``, ``foedus.features`` <- ``features/``, ...), file by
    file as symbolic links, so that ``python -m foedus`` with this on ``PYTHONPATH`` runs the
    clone's own code (found before the installed foedus)."""
    config = tomllib.loads((clone / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in config["package-dir"].items():
        target = shim.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for item in (clone / folder).iterdir():
            if item.is_file():  # modules and the data files beside them; subpackages get their own folder
                (target / item.name).symlink_to(item)
    return shim


def in_clone(clone: Path, shim: Path, mirror: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(shim), "FOEDUS_HOME": str(clone), "FOEDUS_MIRROR": str(mirror),
           "OMP_WAIT_POLICY": "PASSIVE"}
    for name in ("FOEDUS_DATA_DIR", "MLFLOW_TRACKING_URI", "FOEDUS_DEBUG", "FOEDUS_KILL_AT"):
        env.pop(name, None)  # the clone's own data/ and mlruns/
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=clone,
                            timeout=1200)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result


def content_hash(path: Path) -> str:
    """A digest of a table's values (column names, types and every value in order), whatever the
    file's bytes."""
    table = pd.read_parquet(path)
    digest = hashlib.sha256(json.dumps([(c, str(t)) for c, t in table.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def metrics_of(clone: Path) -> dict:
    """Every backtest run's metrics in the clone's store, by (model, fold or 'pooled')."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("foedus-onset-atop_defense_h1")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    return {(r.data.tags["model"], r.data.tags.get("fold", "pooled")): r.data.metrics for r in runs}, runs


def fresh_clone(base: Path, mirror: Path) -> Path:
    """A fresh clone of HEAD in ``base`` that fetches, builds and backtests on its own."""
    clone = base / "foedus"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    shim = importable(clone, base / "shim")
    where = in_clone(clone, shim, mirror, "-c", "import foedus, foedus.features.build as b; "
                                                "print(b.__file__)").stdout.strip()
    assert Path(where).resolve() == clone / "features" / "build.py"  # the clone's code, not this checkout's
    in_clone(clone, shim, mirror, "-m", "foedus", "data", "fetch")
    in_clone(clone, shim, mirror, "-m", "foedus", "build", "-l", SPEC)
    # in the foedus process (--jobs 1): serial and worker backtests are compared in test_executor
    in_clone(clone, shim, mirror, "-m", "foedus", "backtest", "-l", SPEC, "--models", MODELS, "--folds", FOLDS,
             "--jobs", "1")
    return clone


@pytest.fixture(scope="module")
def clones(tmp_path_factory, mirror):
    """Two fresh clones of HEAD, each fetching, building and backtesting on its own, at the same
    time (each in its own folder, with its own data and store)."""
    bases = [tmp_path_factory.mktemp(name) for name in ("first", "second")]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(fresh_clone, bases, [mirror, mirror]))


def test_two_fresh_clones_build_the_same_table(clones):
    first, second = (clone / "data" / "processed" / TABLE for clone in clones)
    assert content_hash(first) == content_hash(second)
    sidecars = [json.loads(path.with_suffix(".json").read_text()) for path in (first, second)]
    assert sidecars[0]["build_key"] == sidecars[1]["build_key"]
    assert sidecars[0]["sources"] == sidecars[1]["sources"]
    assert sidecars[0]["table"] == sidecars[1]["table"]  # the very same bytes, not only the same values


def test_two_fresh_clones_backtest_to_the_same_metrics(clones):
    (first, runs), (second, _) = (metrics_of(clone) for clone in clones)
    assert len(runs) == len(MODELS.split(",")) * 2  # a parent and one fold run per model
    assert first.keys() == second.keys()
    for key in first:
        assert first[key] == second[key], key  # to the last digit
    assert first[("lightgbm", "pooled")]["continuing_dyads_average_precision"] > 0


def test_every_run_records_what_reproduces_it(clones):
    from importlib.metadata import version

    clone = clones[0]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    sidecar = json.loads((clone / "data" / "processed" / TABLE).with_suffix(".json").read_text())
    _, runs = metrics_of(clone)
    for run in runs:
        tags = run.data.tags
        assert tags["git_commit"] == commit and tags["uncommitted_changes"] == "false"
        assert tags["build_key"] == sidecar["build_key"] and tags["data_digest"]
        assert tags["python_version"] == ".".join(map(str, sys.version_info[:3]))
        for library in ("numpy", "pandas", "scikit-learn", "lightgbm", "mlflow"):
            assert f"{library}=={version(library)}" in tags["libraries"].split()
        if "fold" not in tags:
            assert run.data.params["seed"] and run.data.params["folds"] == FOLDS
    parent = next(r for r in runs if "fold" not in r.data.tags)
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{clone / 'mlruns' / 'mlflow.db'}"
    config = MlflowClient(tracking_uri=uri).download_artifacts(parent.info.run_id, "config.json")
    config = json.loads(Path(config).read_text())
    assert config["sources"] == sidecar["sources"]  # each raw file's SHA-256
    assert config["code"]["git_commit"] == commit and config["environment"]["libraries"]["lightgbm"]
    assert config["seed"] == int(parent.data.params["seed"])
