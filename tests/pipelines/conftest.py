"""Fixtures shared by the scoring tests: a real champion, trained once per session."""

from __future__ import annotations

import pytest

from tests.pipelines.cli_helpers import tracking_store

SPEC = "atop:any:1"
FAST = {"n_rounds": 60}


@pytest.fixture(scope="session")
def trained_store(paths, built, tmp_path_factory):
    """The full build of atop:any:1 and a registered champion (a small LightGBM, with the
    latest backtest logged), in a tracking store of its own: trained once per session, whichever
    worker asks first (about 40 s; the scoring tests only read it), for every module that scores."""
    from foedus.features.build import build
    from foedus.features.labels import as_label_spec

    from tests.shared_once import once

    spec = as_label_spec(SPEC)
    _, provenance = built(SPEC)  # the table the store is trained on, in this worker's data folder too
    table = build(spec, paths=paths).table

    def train(folder):
        from foedus.models.backtest import run_backtest
        from foedus.models.experiment import log_backtest, train_final
        from foedus.models.folds import Fold

        with tracking_store(folder):
            result = run_backtest(table, "lightgbm", (Fold(2010, 2018),), params=FAST, label_spec=SPEC)
            log_backtest(result, table, spec, provenance=provenance, root=folder, log_models=False)
            train_final(table, spec, "lightgbm", provenance=provenance, root=folder, params=FAST)

    return {"folder": once(tmp_path_factory, "trained-store", train), "table": table}


@pytest.fixture(scope="module")
def store(trained_store):
    """MLflow pointed at the trained store while the module's tests run (the CLI they start
    inherits it): the built ``table`` and the ``env`` naming the store."""
    with tracking_store(trained_store["folder"]) as uri:
        yield {"table": trained_store["table"], "env": {"MLFLOW_TRACKING_URI": uri}}


@pytest.fixture(scope="module")
def context_2019(store, paths):
    from foedus.scoring import year_context

    return year_context(SPEC, 2019, paths=paths)
