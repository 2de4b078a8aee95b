"""A small real backtest: computed without MLflow, then logged to a temporary store (runs,
artifacts), deterministic; train and the champion rule on top of it."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from foedus.features.labels import LabelSpec
from foedus.models.backtest import run_backtest
from foedus.models.experiment import compare_runs, latest_backtest, log_backtest, train_final
from foedus.models.folds import Fold
from foedus.models.run_view import HEADLINE, PRIMARY, VIEW_KEY
from foedus.models.tracking import configure
from mlflow.tracking import MlflowClient

from tests.pipelines.cli_helpers import seeded_store

SPEC = LabelSpec()
FOLDS = (Fold(1966, 1970), Fold(1971, 1975))
FAST = {"n_rounds": 60}


@pytest.fixture(scope="module")
def table(small_table):
    return small_table


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    seeded_store(tmp_path / "mlruns")  # migrated once per process, not per test
    configure(tmp_path)
    yield tmp_path
    mlflow.set_tracking_uri(None)


def backtest(table, root, model="lightgbm", names=None, log_models=False):
    result = run_backtest(table, model, FOLDS, SPEC.horizon, params=FAST if model == "lightgbm" else None,
                          names=names, label_spec=str(SPEC))
    result.run_id = log_backtest(result, table, SPEC, provenance={"sources": {"x": "y"}, "code": {}}, root=root,
                                 log_models=log_models)
    return result


def test_a_backtest_is_computed_without_any_tracking_store(table, monkeypatch, tmp_path):
    # a tracking URI nobody answers: computing a backtest must not need it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    try:
        result = run_backtest(table, "lightgbm", FOLDS, params=FAST)
    finally:
        mlflow.set_tracking_uri(None)
    assert result.run_id is None and mlflow.active_run() is None
    assert [r.fold for r in result.folds] == list(FOLDS)
    assert len(result.predictions) == sum(len(r.predictions) for r in result.folds)
    assert result.shap_sample is not None and "bias" in result.shap_sample
    assert "# Threat without alliance: lightgbm" in result.report()


def test_a_released_backtest_keeps_its_figures_and_not_its_forecasts(table):
    result = run_backtest(table, "logit-threat", FOLDS, label_spec=str(SPEC))
    light = result.released()
    assert light.predictions is None and light.shap_sample is None
    assert all(f.predictions is None and f.model is None for f in light.folds)
    assert (light.pooled, light.slices, light.params) == (result.pooled, result.slices, result.params)
    assert [f.metrics for f in light.folds] == [f.metrics for f in result.folds]
    assert len(light.threat_without_alliance) == len(result.threat_without_alliance) > 0
    assert result.predictions is not None and all(f.model is not None for f in result.folds)  # untouched


def test_a_backtest_logs_a_parent_run_with_a_nested_run_per_fold(table, store):
    summary = backtest(table, store, names={2: "United States of America"}, log_models=True)
    client = MlflowClient()
    parent = client.get_run(summary.run_id)
    assert parent.data.tags["kind"] == "backtest" and parent.data.tags["model"] == "lightgbm"
    assert parent.data.metrics["all_rows_average_precision"] == pytest.approx(summary.pooled["average_precision"])
    # the parent carries the headline only, under self-explaining names; folds carry their own
    extra = {"all_rows_average_precision_mean_of_folds", "threat_without_alliance"}
    assert set(parent.data.metrics) == {*HEADLINE, *extra}
    assert parent.data.metrics[PRIMARY] == pytest.approx(summary.slices["continuing_dyad"]["average_precision"])
    assert "continuing-dyad AP" in parent.data.tags["mlflow.note.content"]
    assert "| 1966-1970 |" in parent.data.tags["mlflow.note.content"]
    assert not any(k.startswith("hp_") for k in parent.data.params) and parent.data.params["num_leaves"]
    config = mlflow.artifacts.load_dict(f"runs:/{summary.run_id}/config.json")
    assert [f["test"] for f in config["folds"]] == ["1966-1970", "1971-1975"] and config["features"]
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] and f"mlflow.sharedViewState.{VIEW_KEY}" in experiment.tags
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{summary.run_id}'")
    assert sorted(c.data.tags["fold"] for c in children) == ["1966-1970", "1971-1975"]
    child = children[0]
    fold_result = next(f for f in summary.folds if f.fold.name == child.data.tags["fold"])
    assert child.data.metrics["all_rows_average_precision"] == pytest.approx(fold_result.metrics["average_precision"])
    assert PRIMARY in child.data.metrics and "log_loss" in child.data.metrics
    assert child.inputs.dataset_inputs, "the training data is logged with mlflow.data"
    # with its schema (year, a key and a feature, once: a repeated column left MLflow without one)
    logged_schema = json.loads(child.inputs.dataset_inputs[0].dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in logged_schema].count("year") == 1 and len(logged_schema) > 10
    profile = json.loads(child.inputs.dataset_inputs[0].dataset.profile)  # the fold's training rows, counted
    assert profile == {"num_rows": fold_result.train_rows, "num_elements": fold_result.train_rows * len(logged_schema)}
    local = mlflow.artifacts.download_artifacts(run_id=child.info.run_id,
                                                artifact_path="predictions/predictions.parquet")
    forecasts = pd.read_parquet(local)
    assert list(forecasts.columns[:5]) == ["ccode1", "ccode2", "year", "label", "probability"]
    assert forecasts["year"].between(1966, 1975).all()
    logged = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "predictions" in logged
    models = mlflow.search_logged_models(experiment_ids=[parent.info.experiment_id], output_format="list")
    # the logged model gives the fold's forecasts back (it reads year: each year's level is set over its rows)
    fold = next(f for f in summary.folds if f.fold.name == child.data.tags["fold"])
    logged_model = next(m for m in models if m.source_run_id == child.info.run_id)
    assert logged_model.name == f"lightgbm-{SPEC.name}-{fold.fold.name}"
    assert "out of time" in logged_model.tags["mlflow.note.content"]
    test_rows = table[table["year"].between(fold.fold.first, fold.fold.last) & table["at_risk"].fillna(False)]
    reloaded = mlflow.pyfunc.load_model(logged_model.model_uri).predict(test_rows)
    assert reloaded["probability"].to_numpy() == pytest.approx(forecasts["probability"].to_numpy(), rel=1e-9)
    top = {a.path for a in client.list_artifacts(summary.run_id, "threat_without_alliance")}
    assert {"threat_without_alliance/report.md", "threat_without_alliance/reasons.csv"} <= top
    plots = {a.path for a in client.list_artifacts(summary.run_id, "plots")}
    assert {"plots/pr_curves.png", "plots/calibration.png", "plots/shap_summary.png"} <= plots
    assert (summary.threat_without_alliance["probability"] >= 0).all()


def test_tuned_hyperparameters_are_logged_per_fold_with_every_candidates_score(table, store, monkeypatch):
    from foedus.models import tuning

    monkeypatch.setattr(tuning, "GRID", ({"num_leaves": 4, "min_child_samples": 500},
                                         {"num_leaves": 15, "min_child_samples": 100}))
    monkeypatch.setattr(tuning, "ROUNDS", (20, 40))
    result = run_backtest(table, "lightgbm", FOLDS, label_spec=str(SPEC))
    run_id = log_backtest(result, table, SPEC, provenance={}, root=store, log_models=False)
    client = MlflowClient()
    parent = client.get_run(run_id)
    chosen = [str(f.params["num_leaves"]) for f in result.folds]
    assert parent.data.params["num_leaves"] == (chosen[0] if len(set(chosen)) == 1 else "/".join(chosen))
    assert parent.data.metrics["all_rows_average_precision"] == pytest.approx(result.pooled["average_precision"])
    config = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    logged = [f["hyperparameters"]["num_leaves"] for f in config["folds"]]
    assert logged == [f.params["num_leaves"] for f in result.folds]
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    for child in children:
        fold = next(f for f in result.folds if f.fold.name == child.data.tags["fold"])
        assert child.data.params["tuned"] == "True"
        assert child.data.params["n_rounds"] == str(fold.params["n_rounds"])
        local = mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path="tuning/scores.csv")
        assert len(pd.read_csv(local)) == 8  # 2 sizes x 2 round counts x with and without the climate


def test_two_identical_backtests_give_identical_metrics(table, store):
    first = backtest(table, store)
    second = backtest(table, store)
    assert first.pooled == second.pooled
    assert [r.metrics for r in first.folds] == [r.metrics for r in second.folds]


def test_train_needs_a_backtest_then_registers_and_compare_lists_it(table, store):
    from foedus.infra.errors import FoedusError

    with pytest.raises(FoedusError, match="run `foedus backtest"):
        train_final(table, SPEC, "base-rate", provenance={}, root=store)
    summary = backtest(table, store, model="base-rate")
    assert latest_backtest(SPEC, "base-rate", store).info.run_id == summary.run_id
    first_run, promotion = train_final(table, SPEC, "base-rate", provenance={}, root=store)
    primary = summary.slices["continuing_dyad"]["average_precision"]
    assert promotion.promoted and promotion.average_precision == pytest.approx(primary)
    client = MlflowClient()
    version = client.get_model_version(promotion.name, promotion.version)
    assert "first champion" in version.description and summary.run_id in version.description
    assert "champion" in client.get_registered_model(promotion.name).description
    # the same final fit again is the same run and version, reused (nothing is fitted or registered)
    run_id, again = train_final(table, SPEC, "base-rate", provenance={}, root=store)
    assert again.reused is not None and run_id == again.reused.run_id == first_run
    assert again.version == promotion.version
    assert again.promoted and "is the champion" in again.describe()
    # a second final fit (forced) that does not beat it says why it is not the champion
    _, second = train_final(table, SPEC, "base-rate", provenance={}, root=store, force=True)
    assert not second.promoted and second.reused is None
    assert "does not beat" in client.get_model_version(second.name, second.version).description
    listed = compare_runs(store, SPEC)
    assert listed.loc[0, "model"] == "base-rate" and listed.loc[0, "average_precision"] == pytest.approx(
        summary.pooled["average_precision"])
    assert listed.loc[0, "continuing_dyad_average_precision"] == pytest.approx(primary)
    assert listed.loc[0, "median_onset_percentile"] == pytest.approx(
        summary.slices["continuing_dyad"]["median_onset_percentile"])


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning")
def test_the_training_data_schema_is_the_one_mlflow_infers(table):
    """``frame_schema`` (vectorised) gives MLflow's own schema: each column's type, and required
    exactly where the real table has no missing value."""
    from foedus.models.experiment import frame_schema
    from mlflow.types.utils import _infer_schema

    sample = table.iloc[::50]
    assert sample.isna().any().any() and not sample.isna().all().all()  # both kinds of column are compared
    assert frame_schema(sample).to_dict() == _infer_schema(sample).to_dict()
    # of some rows and columns of a frame, as of their copy
    rows, columns = (table["year"] >= 1990).to_numpy(), ["year", "onset", *table.columns[-20:]]
    assert frame_schema(table, rows, columns).to_dict() == _infer_schema(table.loc[rows, columns]).to_dict()
