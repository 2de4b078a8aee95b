"""Time-aware tuning of LightGBM and its level forecast, on the real table (1946-1991)."""

import numpy as np
import pytest
from foedus.features.labels import labelled
from foedus.models import tuning
from foedus.models.backtest import chosen_params, fit_fold
from foedus.models.estimators import CLIMATE, LightGBMOnset
from foedus.models.folds import Fold

SMALL_GRID = ({"num_leaves": 4, "min_child_samples": 500}, {"num_leaves": 15, "min_child_samples": 100})
SMALL_ROUNDS = (20, 60)


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(tuning, "GRID", SMALL_GRID)
    monkeypatch.setattr(tuning, "ROUNDS", SMALL_ROUNDS)


@pytest.fixture(scope="module")
def train(small_table):
    return small_table.loc[labelled(small_table)]


def test_inner_blocks_are_the_last_years_and_leave_a_past_to_fit_on():
    years = np.arange(1816, 1946)
    assert [b.name for b in tuning.inner_blocks(years)] == ["1916-1925", "1926-1935", "1936-1945"]
    # only 1946-1969: the oldest block would leave nothing before it to fit on
    assert [b.name for b in tuning.inner_blocks(np.arange(1946, 1970))] == ["1950-1959", "1960-1969"]
    assert [b.name for b in tuning.inner_blocks(np.arange(1946, 1970), horizon=5)] == ["1960-1969"]


def test_tuning_scores_every_candidate_and_keeps_the_best(train, quick):
    result = tuning.tune_lightgbm(train[train["year"] <= 1975])
    assert len(result.scores) == len(SMALL_GRID) * len(SMALL_ROUNDS) * len(tuning.CLIMATES)
    assert all(b.last <= 1975 for b in result.blocks) and len(result.blocks) == 2  # 1956-65, 1966-75
    best = result.scores.loc[result.scores["average_precision"].idxmax()]
    assert result.params == {"num_leaves": best["num_leaves"], "min_child_samples": best["min_child_samples"],
                             "n_rounds": best["n_rounds"],
                             "climate": best["climate"] if isinstance(best["climate"], str) else None}
    assert result.scores["onsets"].iloc[0] > 0
    # reproducible: same rows and seed, same scores
    again = tuning.tune_lightgbm(train[train["year"] <= 1975])
    assert again.scores.equals(result.scores)


def test_a_fold_without_given_hyperparameters_is_tuned_on_its_training_years(small_table, quick):
    fold = fit_fold(small_table, "lightgbm", Fold(1980, 1985))
    assert fold.tuning is not None and fold.params == fold.tuning.params
    assert fold.model.get_params()["num_leaves"] == fold.params["num_leaves"]
    assert all(b.last < 1980 for b in fold.tuning.blocks)
    given, none = chosen_params(small_table, "lightgbm", {"n_rounds": 30}, seed=7, horizon=1)
    assert given == {"n_rounds": 30} and none is None
    assert chosen_params(small_table, "base-rate", None, seed=7, horizon=1) == ({}, None)


def test_the_level_follows_last_years_climate_and_the_forecasts_stay_calibrated(train):
    model = LightGBMOnset(n_rounds=60).fit(train, train["onset"].astype(int).to_numpy())
    intercept, slope = model.level_coef_
    assert 0 < slope <= 1.5  # a busier last year means a busier year, shrunk toward the mean
    busy, quiet = train.iloc[:2].copy(), train.iloc[:2].copy()
    busy[CLIMATE], quiet[CLIMATE] = 0.05, 0.001
    assert (model.predict_proba(busy)[:, 1] > model.predict_proba(quiet)[:, 1]).all()
    p = model.predict_proba(train)[:, 1]
    assert p.mean() == pytest.approx(train["onset"].astype(int).mean(), rel=0.25)
    # a year without a climate value gets the training rate as its level
    unknown = train.iloc[:1].assign(**{CLIMATE: np.nan})
    assert model.level(unknown)[0] == pytest.approx(model.default_level_)


def test_scoring_without_the_climate_is_the_model_fitted_without_it(train):
    # what tuning relies on to score both levels from one fit
    y = train["onset"].astype(int).to_numpy()
    with_climate = LightGBMOnset(n_rounds=30).fit(train, y)
    without = LightGBMOnset(n_rounds=30, climate=None).fit(train, y)
    rows = train.iloc[::500]
    assert np.array_equal(with_climate.predict_proba(rows, climate=False), without.predict_proba(rows))
    assert not np.array_equal(with_climate.predict_proba(rows), without.predict_proba(rows))
    assert np.unique(without.level(rows)).size == 1


def test_the_climate_is_the_trees_level_not_one_of_their_features(train):
    model = LightGBMOnset(n_rounds=20).fit(train, train["onset"].astype(int).to_numpy())
    assert CLIMATE not in model.tree_features_ and CLIMATE in model.features_ and "year" not in model.features_
    assert CLIMATE in model.contributions(train.iloc[:5]).columns
