"""Time-aware tuning of LightGBM and its level forecast, on the real table (1946-1991)."""

import numpy as np
import pytest
from foedus.features.labels import labelled
from foedus.infra.errors import InvalidInput
from foedus.models import tuning
from foedus.models.backtest import chosen_params, fit_fold
from foedus.models.estimators import (
    CLIMATE,
    LEVEL,
    NEGATIVE_RATE,
    LightGBMOnset,
    negative_sample,
    negative_weights,
    year_rates,
    year_shifts,
)
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
                             "climate": best["climate"] if isinstance(best["climate"], str) else None,
                             "negative_rate": NEGATIVE_RATE}
    assert result.scores["onsets"].iloc[0] > 0
    # reproducible: same rows and seed, same scores
    again = tuning.tune_lightgbm(train[train["year"] <= 1975])
    assert again.scores.equals(result.scores)
    # fewer validation blocks on request (benchmarks/lightgbm_levers.py --inner-blocks): the last ones
    (last,) = tuning.tune_lightgbm(train[train["year"] <= 1975], n_blocks=1).blocks
    assert last == result.blocks[-1]
    # other round counts and learning rate on request (--rounds, --learning-rate): scored, and the
    # rate is among the chosen parameters
    other = tuning.tune_lightgbm(train[train["year"] <= 1975], rounds=(10, 30), learning_rate=0.2)
    assert set(other.scores["n_rounds"]) == {10, 30} and other.params["learning_rate"] == 0.2
    assert not other.scores["average_precision"].equals(result.scores["average_precision"])


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
    assert CLIMATE not in model.tree_features_ and CLIMATE in model.features_ and "year" not in model.tree_features_
    year = train[train["year"] == 1960]
    shap = model.contributions(year.iloc[:5], reference=year)
    assert LEVEL in shap.columns and CLIMATE not in shap.columns
    p = model.predict_proba(year)[:5, 1]
    assert np.allclose(shap.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    with pytest.raises(InvalidInput, match="1961"):
        model.contributions(train[train["year"] == 1961], reference=year)
    # the year constants computed once (as a fold's explanations share them) give the same values
    both = train[train["year"].isin([1960, 1961])]
    constants = model.year_constants(both)
    assert list(constants.index) == [1960, 1961]
    assert shap.equals(model.contributions(year.iloc[:5], constants=constants))
    with pytest.raises(InvalidInput, match="1962"):
        model.contributions(train[train["year"] == 1962].iloc[:3], constants=constants)


def test_year_shifts_set_each_years_mean_forecast_over_its_basis_rows():
    rng = np.random.default_rng(3)
    years = np.repeat([1950, 1951, 1952], 400)
    score = rng.normal(0, 1.5, years.size) + np.where(years == 1951, 2.0, 0.0)  # 1951's pairs look eager
    level = np.log(np.where(years == 1952, 0.02, 0.005) / (1 - np.where(years == 1952, 0.02, 0.005)))
    basis = rng.random(years.size) < 0.8
    basis[years == 1952] = False  # a year without basis rows is set over all its rows
    p = 1 / (1 + np.exp(-(score + year_shifts(score, level, years, basis))))
    assert p[(years == 1950) & basis].mean() == pytest.approx(0.005, rel=1e-9)
    assert p[(years == 1951) & basis].mean() == pytest.approx(0.005, rel=1e-9)  # eager or not: the level says
    assert p[years == 1952].mean() == pytest.approx(0.02, rel=1e-9)
    # within a year the ranking is the trees'
    first = years == 1950
    assert np.array_equal(np.argsort(p[first]), np.argsort(score[first]))


def test_each_year_gets_its_level_on_average_whatever_the_trees_think_of_its_pairs(train):
    model = LightGBMOnset(n_rounds=40).fit(train, train["onset"].astype(int).to_numpy())
    rows = train[train["year"].isin([1965, 1966])]
    p = model.predict_proba(rows)[:, 1]
    level = 1 / (1 + np.exp(-model.level(rows)))
    for year in (1965, 1966):
        basis = (rows["year"] == year).to_numpy() & (rows["new_dyad"] == 0).to_numpy()
        assert p[basis].mean() == pytest.approx(level[basis][0], rel=1e-9)
    # a lone pair is scored against its year: it gets the level
    lone = model.predict_proba(rows.iloc[:1])[0, 1]
    assert lone == pytest.approx(level[0], rel=1e-9)


def test_the_negative_sample_keeps_every_onset_and_a_share_of_each_years_non_onsets(train):
    y, years = train["onset"].astype(int).to_numpy(), train["year"].to_numpy()
    keep = negative_sample(y, years, 0.1, seed=7)
    assert keep[y == 1].all()
    for year in (1946, 1960, 1991):
        negatives = (years == year) & (y == 0)
        assert keep[negatives].sum() == np.ceil(0.1 * negatives.sum())  # stratified by year, exactly
    assert np.array_equal(keep, negative_sample(y, years, 0.1, seed=7))  # seeded
    assert not np.array_equal(keep, negative_sample(y, years, 0.1, seed=8))
    assert negative_sample(y, years, 1.0, seed=7).all()
    with pytest.raises(InvalidInput, match="negative_rate"):
        negative_sample(y, years, 0.0, seed=7)


def test_weights_give_each_year_back_its_non_onsets(train):
    y, years = train["onset"].astype(int).to_numpy(), train["year"].to_numpy()
    keep = negative_sample(y, years, 0.1, seed=7)
    weights = negative_weights(y, years, keep)
    assert weights.size == keep.sum() and (weights[y[keep] == 1] == 1).all()
    for year in (1946, 1960, 1991):
        kept = years[keep] == year
        assert weights[kept & (y[keep] == 0)].sum() == pytest.approx(((years == year) & (y == 0)).sum())
        assert weights[kept & (y[keep] == 1)].sum() == ((years == year) & (y == 1)).sum()


def test_the_trees_fit_the_sample_and_the_level_every_row(train):
    y = train["onset"].astype(int).to_numpy()
    sampled = LightGBMOnset(n_rounds=20, negative_rate=0.2).fit(train, y)
    data = sampled.tree_data(train, y)
    data.construct()
    kept = negative_sample(y, train["year"].to_numpy(), 0.2, seed=sampled.seed)
    assert data.num_data() == kept.sum() and data.get_label().sum() == y.sum()
    # each year's offset is the sampled year's rate: the trees learn who signs within a year
    assert np.allclose(data.get_init_score(), np.log(year_rates(y[kept], train["year"].to_numpy()[kept]) /
                                                     (1 - year_rates(y[kept], train["year"].to_numpy()[kept]))))
    everything = LightGBMOnset(n_rounds=20, negative_rate=1.0).fit(train, y)
    assert sampled.level_coef_ == everything.level_coef_ and sampled.default_level_ == everything.default_level_
    # the leaf minimum is in rows of the whole data: LightGBM gets the rate's share of it
    assert sampled._params()["min_child_samples"] == 40 and everything._params()["min_child_samples"] == 200


def test_one_binned_sample_serves_every_tree_size_as_a_fresh_fit_would(train):
    y = train["onset"].astype(int).to_numpy()
    rows = train.iloc[::300]
    data = LightGBMOnset().tree_data(train, y)
    for size in tuning.GRID[:2]:
        shared = LightGBMOnset(**size, n_rounds=30).fit(train, y, tree_data=data)
        fresh = LightGBMOnset(**size, n_rounds=30).fit(train, y)
        assert np.array_equal(shared.predict_proba(rows), fresh.predict_proba(rows))


def test_scores_after_each_round_count_are_those_of_the_first_trees(train):
    model = LightGBMOnset(n_rounds=60).fit(train, train["onset"].astype(int).to_numpy())
    rows = train[train["year"].isin([1970, 1971])]
    scores = model.tree_scores(rows, (20, 40, 60))
    for r, score in scores.items():
        assert np.allclose(model.proba_of_scores(rows, score), model.predict_proba(rows, n_rounds=r)[:, 1],
                           rtol=1e-12, atol=1e-15)
        assert np.allclose(model.proba_of_scores(rows, score, climate=False),
                           model.predict_proba(rows, n_rounds=r, climate=False)[:, 1], rtol=1e-12, atol=1e-15)
