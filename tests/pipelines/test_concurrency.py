"""Several foedus processes on one local tracking store at once, and scoring while the champion
moves: nothing lost, nothing mixed."""

from __future__ import annotations

import time

import pytest

from tests.pipelines.cli_helpers import foedus_here, tracking_store
from tests.pipelines.store_helpers import (
    EXPERIMENT,
    FOLDS,
    REGISTERED,
    SPEC,
    YEARS,
    assert_complete_backtest,
    built_data,
    client_for,
    env_for,
    runs,
    start,
)

MODELS = "base-rate,logit-threat"
AT_ONCE = "base-rate"  # what each of the processes at once backtests: the store is the point, not the fits


@pytest.fixture(scope="module")
def data(tmp_path_factory, paths, built):
    return built_data(tmp_path_factory.mktemp("concurrency"), paths, built)


def backtests_at_once(n: int, env: dict) -> list[tuple[int, str, str]]:
    # --force: every process computes and logs (an identical finished backtest is reused otherwise)
    processes = [start("backtest", "-l", SPEC, "--models", AT_ONCE, "--folds", FOLDS, *YEARS, "--force", env=env)
                 for _ in range(n)]
    return [(p.wait(timeout=600), *p.communicate()) for p in processes]


def run_ids(stdout: str) -> list[str]:
    """The parent run ids a backtest printed, one per model."""
    return [line.rsplit("run ", 1)[1].strip() for line in stdout.splitlines() if "| run " in line]


def assert_all_recorded(store, outcomes, already: int = 0) -> None:
    """Every process exited 0, and every run it printed is in the store, complete."""
    client = client_for(store)
    printed = []
    for code, stdout, stderr in outcomes:
        assert code == 0, stderr
        assert stderr.strip() == "", stderr  # no warning leaks (MLflow's migrations, races)
        ids = run_ids(stdout)
        assert len(ids) == len(AT_ONCE.split(",")), stdout
        printed += ids
    assert len(set(printed)) == len(printed)
    assert len(client.search_experiments(filter_string=f"name = '{EXPERIMENT}'")) == 1
    for run_id in printed:
        assert_complete_backtest(client, client.get_run(run_id))
    # parents and fold runs: nothing else, nothing missing, nothing left running
    total = len(outcomes) * len(AT_ONCE.split(",")) * (1 + len(FOLDS.split(",")))
    assert len(runs(client)) == already + total
    assert len(runs(client, status="FINISHED")) == already + total


def test_two_backtests_on_an_empty_store_then_three_on_the_existing_one(data, tmp_path):
    store = tmp_path / "store"
    assert not store.exists()  # no database yet: both processes create and migrate it
    env = env_for(data, store, seed=False)
    first = backtests_at_once(2, env)
    assert_all_recorded(store, first)
    assert_all_recorded(store, backtests_at_once(3, env), already=2 * len(AT_ONCE.split(",")) * 3)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A store with both models backtested and trained: base-rate v1, logit-threat v2 (the
    champion: it beats base-rate). Tests set the alias they start from."""
    store = tmp_path_factory.mktemp("trained") / "store"
    env = env_for(data, store)
    # in this process: what runs at once is the point of the tests, not of their starting store
    backtested = foedus_here("backtest", "-l", SPEC, "--models", MODELS, "--folds", FOLDS, *YEARS, env_extra=env)
    assert backtested.returncode == 0, backtested.stderr
    for model in ("base-rate", "logit-threat"):
        assert foedus_here("train", "-l", SPEC, "--model", model, *YEARS, env_extra=env).returncode == 0
    return store, env


def estimator_of(store, version: str) -> str:
    from foedus.features.labels import as_label_spec
    from foedus.models.scoring import load_scoring_model

    with tracking_store(store):
        model = load_scoring_model(as_label_spec(SPEC), model_uri=f"models:/{REGISTERED}/{version}")
    return type(model.estimator).__name__


def champion(client) -> str:
    return str(client.get_model_version_by_alias(REGISTERED, "champion").version)


def test_scores_during_a_train_that_moves_the_champion_each_use_one_version(trained):
    """Scoring code loads the champion over and over while ``foedus train`` moves the alias from
    base-rate v1 to a new logit-threat version: each load's model is the version it reports."""
    from foedus.features.labels import as_label_spec
    from foedus.models.scoring import load_scoring_model

    store, env = trained
    client = client_for(store)
    client.set_registered_model_alias(REGISTERED, "champion", "1")
    spec = as_label_spec(SPEC)
    loads = []
    with tracking_store(store):
        training = start("train", "-l", SPEC, "--model", "logit-threat", *YEARS, "--force", env=env)  # a new version
        while training.poll() is None:
            model = load_scoring_model(spec)
            loads.append((model.version, type(model.estimator).__name__))
            time.sleep(0.2)  # loads all through the train, leaving it a core (the forced race is the next test)
        for _ in range(3):
            model = load_scoring_model(spec)
            loads.append((model.version, type(model.estimator).__name__))
    assert training.returncode == 0, training.communicate()[1]
    new = champion(client)
    assert new not in ("1", "2")
    versions = dict(loads)
    assert set(versions) == {"1", new}, loads  # before and after the move
    assert versions == {"1": estimator_of(store, "1"), new: estimator_of(store, new)}
    assert versions["1"] != versions[new]
    assert all(versions[version] == estimator for version, estimator in loads), loads


def test_a_load_uses_the_version_the_alias_named_even_if_the_alias_moves_at_that_moment(trained, monkeypatch):
    """The race made certain: the alias moves right after it is read; the loaded model must
    still be the version read (loading by the alias a second time would give the other one)."""
    from foedus.features.labels import as_label_spec
    from foedus.models import scoring
    from mlflow.tracking import MlflowClient

    store, _ = trained
    client = client_for(store)
    client.set_registered_model_alias(REGISTERED, "champion", "1")
    read = MlflowClient.get_model_version_by_alias
    moved = []

    def read_then_move(self, name, alias):
        found = read(self, name, alias)
        self.set_registered_model_alias(name, alias, "2")  # a train, at the worst moment
        moved.append(alias)
        return found

    with tracking_store(store):
        monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", read_then_move)
        model = scoring.load_scoring_model(as_label_spec(SPEC))
        monkeypatch.undo()
    assert moved and model.version == "1" and champion(client) == "2"
    assert type(model.estimator).__name__ == estimator_of(store, "1") != estimator_of(store, "2")
