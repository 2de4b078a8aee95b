"""The model catalogue: one table of names, descriptions and factories for every caller."""

from __future__ import annotations

import pytest
from foedus.infra.errors import InvalidInput
from foedus.models.catalogue import MODELS, make_model, model_names
from foedus.models.seed import DEFAULT_SEED
from sklearn.base import clone, is_classifier


def test_every_model_is_a_fresh_scikit_learn_classifier_with_a_description():
    for name, spec in MODELS.items():
        model = make_model(name)
        assert is_classifier(model) and not hasattr(model, "classes_"), name  # unfitted
        clone(model)  # hyperparameters live in __init__, as scikit-learn requires
        assert spec.description and spec.name == name
    assert make_model("lightgbm").seed == DEFAULT_SEED
    assert make_model("lightgbm", seed=3, num_leaves=7).get_params()["num_leaves"] == 7


def test_names_are_checked_once_with_the_choices_in_the_message():
    assert model_names("lightgbm, base-rate") == ["lightgbm", "base-rate"]
    with pytest.raises(InvalidInput, match="unknown model xgboost: choose from lightgbm, logit-literature"):
        model_names("lightgbm,xgboost")
    with pytest.raises(InvalidInput, match="no model given"):
        model_names([])


def test_only_a_tunable_model_takes_hyperparameters():
    with pytest.raises(InvalidInput, match="base-rate takes no hyperparameters"):
        make_model("base-rate", num_leaves=7)


def test_the_logits_impute_the_same_medians_as_scikit_learns_median_strategy(small_table):
    import numpy as np
    from foedus.models.estimators import LITERATURE
    from sklearn.impute import SimpleImputer

    X = small_table[[c for c in LITERATURE if c != "era"]].assign(never_observed=np.nan)
    assert X.isna().any().sum() > 2 and len(X) % 2 == 0  # several columns to impute; an even count averages two
    model = make_model("logit-literature")
    ours = clone(model.pipeline.named_steps["prepare"].transformers[0][1].steps[0][1])
    theirs = SimpleImputer(strategy="median", add_indicator=True)
    ours.fit(X), theirs.fit(X)
    np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)
    with pytest.warns(UserWarning, match="without any observed values"):  # the empty column is dropped by both
        imputed = ours.transform(X), theirs.transform(X)
    assert imputed[0].shape[1] == X.shape[1] - 1 + X.isna().any().sum()  # a missing indicator per gappy column
    np.testing.assert_array_equal(*imputed)
    assert list(ours.get_feature_names_out()) == list(theirs.get_feature_names_out())


def test_the_main_job_backtests_every_model_but_those_kept_out_of_it():
    import inspect

    from foedus.cli.experiments import run
    from foedus.models.catalogue import MAIN_JOB_MODELS

    assert MAIN_JOB_MODELS == ("lightgbm", "logit-literature", "logit-threat", "base-rate")
    assert not MODELS["hist-gradient-boosting"].in_main_job  # `foedus backtest` still runs it by default
    assert inspect.signature(run).parameters["models"].default.default == ",".join(MAIN_JOB_MODELS)
