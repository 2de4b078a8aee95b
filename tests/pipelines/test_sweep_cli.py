"""`foedus sweep` as a user runs it: a study of the years before a test block, each trial a nested
MLflow run; `backtest --sweep` and `train --sweep` fit with the best trial's parameters."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error
from tests.pipelines.cli_helpers import foedus_here as foedus
from tests.pipelines.store_helpers import SPEC, built_data, client_for, env_for, runs

FOLD = "1919-1938"
TRIALS = 2


@pytest.fixture(scope="module")
def data(tmp_path_factory, paths, built):
    return built_data(tmp_path_factory.mktemp("sweep"), paths, built)


@pytest.fixture(scope="module")
def swept(data, tmp_path_factory):
    """A store after `foedus sweep` of the years before 1919 (two trials, serial)."""
    store = tmp_path_factory.mktemp("sweep-store")
    env = env_for(data, store)
    result = foedus("sweep", "-l", SPEC, "--folds", FOLD, "--no-final", "--trials", str(TRIALS), "--batch", "2",
                    "--jobs", "1", env_extra=env)
    assert result.returncode == 0, result.stderr
    return store, env, result


def test_a_sweep_logs_each_trial_as_a_nested_run_and_stores_the_study(swept):
    store, _, result = swept
    assert "before 1919: best trial" in result.stdout and "optuna.db" in result.stdout
    assert result.stderr.count("before 1919: trial") == TRIALS
    client = client_for(store)
    parents = [r for r in runs(client) if r.data.tags.get("kind") == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["validation_blocks"] == "1889-1898,1899-1908,1909-1918"
    trials = [r for r in runs(client) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == TRIALS and all(t.data.tags["kind"] == "sweep-trial" for t in trials)
    assert all(t.info.status == "FINISHED" and 0 < t.data.metrics["continuing_dyad_average_precision"] <= 1
               for t in trials)
    # the study is in optuna.db beside the MLflow database, and agrees with the runs
    study_name = parent.data.tags["sweep_study"]
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{store / 'optuna.db'}")
    values = sorted(t.value for t in study.trials)
    assert values == sorted(t.data.metrics["continuing_dyad_average_precision"] for t in trials)
    assert parent.data.metrics["best_continuing_dyad_average_precision"] == max(values)
    best = Path(client.download_artifacts(parent.info.run_id, "best.json", str(store)))
    assert json.loads(best.read_text())["best_value"] == max(values)
    # nothing of the sweep in the backtest comparison
    assert "sweep" not in foedus("compare", "-l", SPEC, env_extra=swept[1]).stdout


def test_backtest_and_train_with_the_sweeps_best_parameters(swept):
    store, env, _ = swept
    client = client_for(store)
    study = optuna.load_study(study_name=next(r for r in runs(client) if r.data.tags.get("kind") == "sweep")
                              .data.tags["sweep_study"], storage=f"sqlite:///{store / 'optuna.db'}")
    best = study.best_trial.params

    # a fold without its study is refused in one line, before any fit
    missing = foedus("backtest", "-l", SPEC, "--models", "lightgbm", "--folds", "1946-1969", "--sweep", "--jobs", "1",
                     env_extra=env)
    assert_user_error(missing, "no sweep study", "before 1946", "foedus sweep")
    assert_user_error(foedus("backtest", "-l", SPEC, "--models", "base-rate", "--sweep", env_extra=env),
                      "--sweep backtests lightgbm only")

    result = foedus("backtest", "-l", SPEC, "--models", "lightgbm", "--folds", FOLD, "--sweep", "--jobs", "1",
                    env_extra=env)
    assert result.returncode == 0, result.stderr
    parent = next(r for r in runs(client) if r.data.tags.get("kind") == "backtest")
    assert parent.data.tags["hyperparameters"] == "sweep" and parent.data.tags[f"sweep_{FOLD}"] == study.study_name
    fold_run = next(r for r in runs(client) if r.data.tags.get("kind") == "backtest-fold")
    assert fold_run.data.params["tuned"] == "False"
    for key in ("num_leaves", "min_child_samples", "n_rounds"):
        assert fold_run.data.params[key] == str(best[key])

    # train --sweep needs the study of every labelled year: refused in one line while there is none
    assert_user_error(foedus("train", "-l", SPEC, "--sweep", env_extra=env), "no sweep study",
                      "all labelled years")
    # with one (a single finished trial, added by hand: a real one fits on 1816-2018), train uses it
    final = optuna.create_study(study_name=study.study_name.replace("before 1919", "all labelled years"),
                                storage=f"sqlite:///{store / 'optuna.db'}", direction="maximize")
    final.add_trial(optuna.trial.create_trial(
        params={"num_leaves": 5, "n_rounds": 50, "climate_level": False},
        distributions={"num_leaves": optuna.distributions.IntDistribution(4, 63, log=True),
                       "n_rounds": optuna.distributions.IntDistribution(50, 600, step=50),
                       "climate_level": optuna.distributions.CategoricalDistribution([True, False])},
        value=0.5))
    trained = foedus("train", "-l", SPEC, "--sweep", env_extra=env)
    assert trained.returncode == 0, trained.stderr
    run = next(r for r in runs(client) if r.data.tags.get("kind") == "train")
    assert run.data.tags["hyperparameters"] == "sweep" and run.data.tags["sweep_study"] == final.study_name
    assert run.data.tags["backtest_run_id"] == parent.info.run_id  # judged by the swept backtest
    assert (run.data.params["num_leaves"], run.data.params["n_rounds"], run.data.params["tuned"]) == ("5", "50",
                                                                                                       "False")


def test_an_unreachable_storage_is_one_line_before_any_build(tmp_path, paths):
    from foedus.ui import free_port

    project = {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(tmp_path / "data"),
               "FOEDUS_MIRROR": str(paths.raw.parent / "no-mirror"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"}
    storage = f"postgresql+psycopg2://team:s3cret@127.0.0.1:{free_port()}/optuna"  # nobody listens there
    result = foedus("sweep", "--storage", storage, "--jobs", "1", env_extra=project)
    assert_user_error(result, "the sweep storage postgresql+psycopg2://team:***@127.0.0.1", "cannot be opened",
                      "FOEDUS_SWEEP_STORAGE")
    assert "s3cret" not in result.stderr and not (tmp_path / "data" / "processed").exists()
    assert_user_error(foedus("sweep", "--trials", "0", env_extra=project), "--trials 0: give at least 1")
    assert_user_error(foedus("sweep", "--no-final", env_extra=project), "nothing to sweep")
