"""The champion rule, on a real (temporary) MLflow store."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from foedus.features.labels import LabelSpec
from foedus.models.estimators import BaseRate
from foedus.models.pyfunc import log_onset_model
from foedus.models.registry import AP_TAG, CHAMPION, current_champion, promote_if_better, registered_name
from foedus.models.tracking import configure, experiment_id
from mlflow.tracking import MlflowClient


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = configure(tmp_path)
    yield tmp_path
    mlflow.set_tracking_uri(None)
    assert uri.startswith("sqlite:///") and (tmp_path / "mlruns" / "mlflow.db").is_file()


def register_one(root, spec, rate: float) -> str:
    X = pd.DataFrame({"year": [2000, 2001], "n_states": [190.0, 191.0]})
    model = BaseRate().fit(X, np.array([0, 1]) if rate else np.array([0, 0]))
    mlflow.set_experiment(experiment_id=experiment_id(spec, root))
    with mlflow.start_run():
        info = log_onset_model(model, ["year", "n_states"], X, spec)
    return mlflow.register_model(info.model_uri, registered_name(spec)).version


def test_champion_moves_only_when_the_backtest_ap_is_beaten(store):
    spec = LabelSpec()
    client = MlflowClient()
    name = registered_name(spec)
    assert name == "foedus-onset-atop_any_h1"

    first = promote_if_better(client, name, register_one(store, spec, 0.5), 0.050)
    assert first.promoted and first.previous_version is None
    worse = promote_if_better(client, name, register_one(store, spec, 0.5), 0.030)
    assert not worse.promoted and current_champion(client, name) == (first.version, 0.05)
    tie = promote_if_better(client, name, register_one(store, spec, 0.5), 0.050)
    assert not tie.promoted  # must beat, not equal
    better = promote_if_better(client, name, register_one(store, spec, 0.5), 0.061)
    assert better.promoted and better.previous_version == first.version
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == better.version
    assert client.get_model_version(name, worse.version).tags[AP_TAG] == "0.03"
    assert "does not beat" in worse.describe() and "moved" in better.describe()


def test_the_registered_model_predicts_probabilities(store):
    spec = LabelSpec("atop", "defense", 1)
    version = register_one(store, spec, 0.5)
    loaded = mlflow.pyfunc.load_model(f"models:/{registered_name(spec)}/{version}")
    out = loaded.predict(pd.DataFrame({"year": [2019], "n_states": [195.0]}))
    assert list(out.columns) == ["probability"] and out["probability"].iloc[0] == pytest.approx(0.5)
