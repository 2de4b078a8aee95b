"""The onset models, all scikit-learn estimators on the feature table (named and described
in ``foedus.models.catalogue``, which also makes them).

Every model takes the feature table (a DataFrame holding the feature columns, including
``year``) and a 0/1 onset vector: ``fit(X, y)``, ``predict_proba(X)``. All train unweighted,
because class weights or resampling distort the probabilities of an event this rare
(about 0.7% of at-risk dyad-years), and the probabilities are what users read.

- ``lightgbm``: gradient-boosted trees on the pair features (NaN handled natively: missing
  is information) plus a forecast of each year's level from last year's alliance climate
  (see ``LightGBMOnset``); its sizes and number of trees are tuned on years before the test
  block (``foedus.models.tuning``).
- ``logit-literature``: standardized logistic regression on the classic predictors of the
  alliance literature (Lai & Reiter 2000; Gibler & Wolford 2006).
- ``logit-threat``: logistic regression on the shared-threat family alone ("threat is enough").
- ``hist-gradient-boosting``: scikit-learn's histogram gradient boosting, a second ensemble.
- ``base-rate``: the training onset rate for everyone (the floor).

Trees do not extrapolate a trend: a clock (``year``, ``era``) puts every test year in the
last training bucket (1946-69 would all look like the 1945 burst). The tree models therefore
leave out ``year``, ``era`` and the year-wide alliance climate (LightGBM may use the climate
for its level, never in a tree); the literature logit keeps era as dummies, as the literature does.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from foedus.features.families import threat
from foedus.features.universe import DYAD
from foedus.infra.errors import InvalidInput
from foedus.models.seed import DEFAULT_SEED
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LABELS = ("at_risk", "onset")
TIME_TREND = ("year", "era")

# Capability ratio, major powers, shared threat, regime difference and joint democracy,
# contiguity and distance, prior alliance (era is added as dummies).
LITERATURE = [
    "log_cinc_ratio", "n_major", "major_minor", "shared_threat", "common_foes_10y", "euds_absdiff",
    "joint_democracy", "contig_land", "log1p_capital_distance", "ever_allied",
]
THREAT = [f.name for f in threat.FAMILY.features]

# The year-wide feature LightGBM forecasts the level of a year from (network family), and the
# rate it is clipped to before taking log-odds.
CLIMATE = "new_alliance_rate"
CLIMATE_FLOOR = 1e-4
# the contributions column holding a year's level (LightGBMOnset): year-wide, never a pair's reason
LEVEL = "year_level"
# The share of each year's non-onsets LightGBM's trees are fitted on (every onset is kept):
# case-control sampling of a rare event (King and Zeng 2001). Chosen by the out-of-time backtest
# of both labels over three seeds (benchmarks/lightgbm_levers.py, README "Cost of a fit").
NEGATIVE_RATE = 0.1
# Binning of the trees' data: one Dataset is reused across tree sizes (``LightGBMOnset.tree_data``),
# so it must not drop features by one size's minimum leaf (``feature_pre_filter``).
DATASET_PARAMS = {"feature_pre_filter": False, "max_bin": 255}


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Every column of a built table that a model may read (not the pair codes or labels)."""
    return [c for c in table.columns if c not in DYAD and c not in LABELS]


def _years(X: pd.DataFrame) -> np.ndarray:
    if "year" not in X:
        raise InvalidInput("the rows lack the column year: pass rows of a table built by `foedus build`")
    return X["year"].to_numpy()


def continuing(X: pd.DataFrame) -> np.ndarray:
    """Rows of pairs that were a system dyad in t-1 (``new_dyad == 0``), known at the end of
    t-1; every row when the table has no ``new_dyad``."""
    if "new_dyad" not in X:
        return np.ones(len(X), dtype=bool)
    return (X["new_dyad"] == 0).to_numpy()


def _probabilities(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return np.column_stack([1 - p, p])


class BaseRate(ClassifierMixin, BaseEstimator):
    """Everyone gets the training onset rate."""

    def fit(self, X, y):
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return _probabilities(np.full(len(X), self.rate_))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _floored_logit(rate) -> np.ndarray:
    # a year without new alliances (or onsets) is a low level, not minus infinity
    return _logit(np.clip(rate, CLIMATE_FLOOR, 1 - CLIMATE_FLOOR))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(z, -50, 50)))


def year_shifts(score: np.ndarray, level: np.ndarray, years: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per row, its year's constant c: the one that makes the mean of sigmoid(score + c) over the
    year's ``basis`` rows (all its rows if it has none) equal sigmoid(level), the year's
    forecast rate (``level`` is one value per year). Newton's method on every year at once."""
    _, group = np.unique(years, return_inverse=True)
    weight = np.asarray(basis, dtype=float)
    has_basis = np.bincount(group, weight) > 0
    weight = np.where(has_basis[group], weight, 1.0)
    total = np.bincount(group, weight)
    goal = _sigmoid(np.bincount(group, weight * level) / total)
    # rare events: sigmoid is nearly exp, so this start is nearly the answer
    shift = np.log(goal / (1 - goal)) - np.log(np.bincount(group, weight * np.exp(np.clip(score, -50, 50))) / total)
    for _ in range(50):
        p = _sigmoid(score + shift[group])
        gap = np.bincount(group, weight * p) / total - goal
        slope = np.bincount(group, weight * p * (1 - p)) / total
        shift -= gap / np.maximum(slope, 1e-300)
        if np.all(np.abs(gap) <= 1e-12 * goal):
            break
    return shift[group]


def negative_sample(y: np.ndarray, years: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """A boolean mask keeping every onset and, within each year, the share ``rate`` of its
    non-onsets (rounded up, so a year keeps at least one), drawn with ``seed``: the same rows
    and seed always keep the same rows."""
    y, years = np.asarray(y), np.asarray(years)
    if rate >= 1:
        return np.ones(len(y), dtype=bool)
    if not 0 < rate:
        raise InvalidInput(f"negative_rate must be in (0, 1], not {rate}")
    negative = np.flatnonzero(y == 0)
    draw = np.random.default_rng(seed).random(negative.size)
    order = np.lexsort((draw, years[negative]))  # by year, then at random within the year
    by_year = years[negative][order]
    starts = np.r_[0, np.flatnonzero(by_year[1:] != by_year[:-1]) + 1]
    sizes = np.diff(np.r_[starts, by_year.size])
    position = np.arange(by_year.size) - np.repeat(starts, sizes)
    keep = np.ones(len(y), dtype=bool)
    keep[negative[order]] = position < np.repeat(np.ceil(rate * sizes), sizes)
    return keep


def sampled_leaf(rows: int, rate: float) -> int:
    """A minimum leaf of ``rows`` rows of the whole data, in rows of a sample keeping ``rate``
    of the non-onsets (at least one)."""
    return max(1, int(np.ceil(rows * min(rate, 1.0))))


def year_rates(y: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Each row's year onset rate, with half an onset added ((k + 1/2) / (n + 1)) so that a
    year without onsets has a finite log-odds."""
    frame = pd.DataFrame({"y": y, "year": years})
    grouped = frame.groupby("year")["y"]
    return ((grouped.transform("sum") + 0.5) / (grouped.transform("size") + 1)).to_numpy(dtype=float)


class LightGBMOnset(ClassifierMixin, BaseEstimator):
    """LightGBM on the pair features for who signs within a year, and a forecast of how many.

    Alliances come in bursts (1945, the 1990s) that no pair feature foresees, and a tree cannot
    extrapolate a level to new years. So the model has two parts, added on the log-odds scale:

    - the trees: fitted with each training year's own onset log-odds as a fixed offset
      (``init_score``), so they learn which pairs sign within a year, not which years are busy;
    - the level of year t, the forecast onset rate of its continuing at-risk pairs: a logistic
      regression of the training years' onsets on the log-odds of ``climate``
      (``new_alliance_rate``: last year's share of new alliances), ``a + b * logit(climate)``
      (b < 1 shrinks a burst toward the mean); without a climate (1816, or ``climate=None``),
      the training rate.

    The year's constant is then set so that the mean forecast over the year's continuing pairs
    (``new_dyad == 0``: pairs known at the end of t-1) equals the level (``year_shifts``). The
    trees rank the pairs of a year, the level says how many onsets the year holds, as in
    training. A year whose pairs look more alliance-prone to the trees therefore does not get
    more onsets: that is the level's to say. Measured on the ATOP backtest (15 leaves, 400
    trees), this lifts pooled continuing-dyad average precision from 0.012 to 0.021 (defense)
    and from 0.036 to 0.049 (any) over adding the level to the trees' scores, with each year's
    ranking unchanged.

    The trees are fitted on every onset and a seeded share (``negative_rate``) of each year's
    non-onsets: with an event this rare the non-onsets carry little information each, and the
    sample costs a tenth of the time. The year's offset is the sampled year's rate, so the trees
    still learn who signs within a year; the level (fitted on every row) and ``year_shifts`` set
    the probabilities, so sampling changes no year's mean forecast. ``min_child_samples`` is in
    rows of the whole data: the trees get that many times the rate.

    So ``predict_proba(X)`` must see every at-risk dyad of each year it scores (a built table's
    labelled rows of that year); a lone pair gets its year's level. No early stopping:
    ``n_rounds``, the tree sizes and whether the climate sets the level come from
    ``foedus.models.tuning``.
    """

    def __init__(self, learning_rate=0.1, num_leaves=15, min_child_samples=200, feature_fraction=0.8,
                 bagging_fraction=0.8, lambda_l2=10.0, n_rounds=200, climate=CLIMATE, exclude=TIME_TREND,
                 seed=DEFAULT_SEED, num_threads=2, negative_rate=NEGATIVE_RATE):
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.n_rounds = n_rounds
        self.climate = climate
        self.exclude = exclude
        self.seed = seed
        self.num_threads = num_threads
        self.negative_rate = negative_rate

    def _params(self) -> dict:
        return {
            "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": sampled_leaf(self.min_child_samples, self.negative_rate),
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction, "bagging_freq": 1, "lambda_l2": self.lambda_l2,
            # reproducible: same data and seed give the same trees, whatever the thread count
            "deterministic": True, "force_row_wise": True, "seed": self.seed, "num_threads": self.num_threads,
            "verbose": -1, **DATASET_PARAMS,
        }

    def _climate_logit(self, X: pd.DataFrame) -> np.ndarray:
        if self.climate is None:
            return np.full(len(X), np.nan)
        if self.climate not in X:
            raise InvalidInput(f"the feature table lacks {self.climate}: rebuild it with `foedus build`")
        return _floored_logit(X[self.climate].to_numpy(dtype=float))

    def _fit_level(self, X: pd.DataFrame, y: np.ndarray) -> None:
        basis = continuing(X)
        z, y = self._climate_logit(X)[basis], y[basis]  # the climate column alone, not every column
        known = ~np.isnan(z)
        self.default_level_ = float(_floored_logit(y.mean()))
        self.level_coef_ = (self.default_level_, 0.0)
        if known.sum() and y[known].any() and np.unique(z[known]).size > 1:
            fit = LogisticRegression(C=np.inf).fit(z[known, None], y[known])
            self.level_coef_ = (float(fit.intercept_[0]), float(fit.coef_[0, 0]))

    def level(self, X: pd.DataFrame) -> np.ndarray:
        """The log-odds of the year's onset rate forecast from the climate (one value per row)."""
        z = self._climate_logit(X)
        intercept, slope = self.level_coef_
        return np.where(np.isnan(z), self.default_level_, intercept + slope * np.nan_to_num(z))

    def tree_features(self, X: pd.DataFrame) -> list[str]:
        """The columns of ``X`` the trees read: the climate never enters them, whether or not it
        sets the level."""
        return [c for c in feature_columns(X) if c not in (*self.exclude, CLIMATE, self.climate)]

    def tree_data(self, X: pd.DataFrame, y) -> lgb.Dataset:
        """The trees' training data for ``X``: the sampled rows, binned, with each year's offset.
        What ``fit`` builds; build it once and pass it to the ``fit`` of models that differ
        only in tree size or rounds (tuning does): binning is then done once."""
        y = np.asarray(y, dtype=int)
        keep = negative_sample(y, _years(X), self.negative_rate, self.seed)
        rows, kept = (X, y) if keep.all() else (X[keep], y[keep])
        offset = _logit(year_rates(kept, _years(rows)))
        return lgb.Dataset(rows[self.tree_features(X)], kept, init_score=offset, params=dict(DATASET_PARAMS))

    def fit(self, X: pd.DataFrame, y, *, tree_data: lgb.Dataset | None = None):
        """Fit on ``X`` (whole labelled years) and ``y``; ``tree_data``: what ``tree_data(X, y)``
        returned for these rows, with this negative rate and seed (else it is built here)."""
        y = np.asarray(y, dtype=int)
        # features_: the columns it reads (what a logged model asks for), year for the year's level
        self.tree_features_ = self.tree_features(X)
        self.features_ = [*self.tree_features_, *([self.climate] if self.climate is not None else []), "year"]
        self._fit_level(X, y)  # on every row: the level is what the probabilities stand on
        data = self.tree_data(X, y) if tree_data is None else tree_data
        self.booster_ = lgb.train(self._params(), data, self.n_rounds)
        self.classes_ = np.array([0, 1])
        return self

    def _year_constants(self, X: pd.DataFrame, score: np.ndarray, climate: bool = True) -> np.ndarray:
        level = self.level(X) if climate else np.full(len(X), self.default_level_)
        return year_shifts(score, level, _years(X), continuing(X))

    def _log_odds(self, X: pd.DataFrame, n_rounds: int | None = None, climate: bool = True) -> np.ndarray:
        score = self.booster_.predict(X[self.tree_features_], raw_score=True, num_iteration=n_rounds)
        return score + self._year_constants(X, score, climate)

    def predict_proba(self, X: pd.DataFrame, n_rounds: int | None = None, climate: bool = True):
        """Probabilities for every row of ``X``, which holds whole years (see the class). For
        tuning, which scores several variants of one fit: ``n_rounds`` uses the first that many
        trees; ``climate=False`` gives the training rate as every year's level, exactly what
        the same model fitted with ``climate=None`` forecasts."""
        return _probabilities(_sigmoid(self._log_odds(X, n_rounds, climate)))

    def tree_scores(self, X: pd.DataFrame, rounds) -> dict[int, np.ndarray]:
        """The trees' raw score of ``X`` after each count of ``rounds``, every tree evaluated once
        (the score after r trees is the score after fewer plus the trees between)."""
        scores, score, done = {}, np.zeros(len(X)), 0
        features = X[self.tree_features_]
        for r in sorted(rounds):
            score = score + self.booster_.predict(features, raw_score=True, start_iteration=done,
                                                  num_iteration=r - done)
            scores[r], done = score, r
        return scores

    def proba_of_scores(self, X: pd.DataFrame, score: np.ndarray, climate: bool = True) -> np.ndarray:
        """P(onset) of the rows of ``X`` (whole years) from their trees' raw ``score`` (``tree_scores``)."""
        return _sigmoid(score + self._year_constants(X, score, climate))

    def year_constants(self, X: pd.DataFrame) -> pd.Series:
        """Each year's constant on the log-odds scale (``year_shifts``), by year, over the whole
        years ``X`` holds: what ``contributions`` needs, computed once for several calls."""
        score = self.booster_.predict(X[self.tree_features_], raw_score=True)
        return pd.Series(self._year_constants(X, score), index=_years(X)).groupby(level=0).first()

    def contributions(self, X: pd.DataFrame, reference: pd.DataFrame | None = None, *,
                      constants: pd.Series | None = None) -> pd.DataFrame:
        """SHAP values in log-odds (``pred_contrib``) for the rows of ``X``: one column per tree
        feature, ``year_level`` (the year's constant, with the trees' mean, less the training
        rate's log-odds) and ``bias`` (the training rate's log-odds); each row sums to the
        model's log-odds for that dyad-year. The year's constant is computed over ``reference``
        (the whole years ``X`` is taken from; default ``X`` itself), or taken from
        ``constants`` (``year_constants`` of those years)."""
        if constants is None:
            constants = self.year_constants(X if reference is None else reference)
        missing = np.setdiff1d(_years(X), constants.index)
        if missing.size:
            raise InvalidInput(f"contributions for {missing[0]} need that year's dyads in the reference rows")
        values = self.booster_.predict(X[self.tree_features_], pred_contrib=True)
        frame = pd.DataFrame(values[:, :-1], columns=self.tree_features_, index=X.index)
        frame[LEVEL] = values[:, -1] + constants.reindex(_years(X)).to_numpy() - self.default_level_
        frame["bias"] = self.default_level_
        return frame

    @property
    def feature_importances_(self) -> pd.Series:
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.tree_features_).sort_values(ascending=False)


def negative_weights(y: np.ndarray, years: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The weight of each kept row (``keep``: a ``negative_sample`` mask): 1 for an onset, and
    for a non-onset its year's non-onsets over those kept, so that the kept rows' weighted
    log-loss is, in expectation, the whole data's (inverse-probability weighting) and the
    probabilities keep their level."""
    y, years = np.asarray(y), np.asarray(years)
    _, group = np.unique(years, return_inverse=True)
    negative = y == 0
    ratio = (np.bincount(group, negative) / np.maximum(np.bincount(group, negative & keep), 1))[group]
    return np.where(negative, ratio, 1.0)[keep]


class ColumnsModel(ClassifierMixin, BaseEstimator):
    """A scikit-learn pipeline on the given ``columns`` (default: every feature but ``exclude``).

    ``negative_rate`` < 1 (only for a pipeline that takes ``sample_weight``: a bare estimator):
    fitted on every onset and a seeded share of each year's non-onsets (``negative_sample``),
    each kept non-onset weighted by its year's non-onsets over those kept
    (``negative_weights``)."""

    def __init__(self, columns=None, pipeline=None, exclude=(), negative_rate=1.0, seed=DEFAULT_SEED):
        self.columns = columns
        self.pipeline = pipeline
        self.exclude = exclude
        self.negative_rate = negative_rate
        self.seed = seed

    def fit(self, X: pd.DataFrame, y):
        if self.columns is not None:
            self.features_ = list(self.columns)
        else:
            self.features_ = [c for c in feature_columns(X) if c not in self.exclude]
        missing = [c for c in self.features_ if c not in X]
        if missing:
            raise InvalidInput(f"the feature table lacks {', '.join(missing)}: rebuild it with `foedus build`")
        y = np.asarray(y, dtype=int)
        weights = {}
        if self.negative_rate < 1:
            keep = negative_sample(y, _years(X), self.negative_rate, self.seed)
            weights = {"sample_weight": negative_weights(y, _years(X), keep)}
            X, y = X[keep], y[keep]
        self.pipeline_ = clone(self.pipeline).fit(X[self.features_], y, **weights)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame):
        return self.pipeline_.predict_proba(X[self.features_])


def median_of_observed(values: np.ndarray) -> float:
    """The median of a column's observed values (NaN if none: ``SimpleImputer`` then drops the
    column, as with ``strategy="median"``). The same number as ``strategy="median"``, which
    sorts a masked copy of the whole table: 13.4 s against 0.36 s for 31 columns of 1.1
    million rows."""
    return float(np.median(values)) if values.size else np.nan


def logit(columns: list[str], era_dummies: bool) -> ColumnsModel:
    # Missing values are imputed with the training median plus an explicit missing-indicator
    # column, both fitted on the training fold only.
    numeric = [c for c in columns if c != "era"]
    imputer = SimpleImputer(strategy=median_of_observed, add_indicator=True)
    steps = [("numeric", make_pipeline(imputer, StandardScaler()), numeric)]
    if era_dummies:
        steps.append(("era", OneHotEncoder(handle_unknown="ignore"), ["era"]))
    pipeline = Pipeline([
        ("prepare", ColumnTransformer(steps)),
        ("logit", LogisticRegression(C=1.0, max_iter=2000)),
    ])
    return ColumnsModel(columns=[*numeric, *(["era"] if era_dummies else [])], pipeline=pipeline)


def hist_gradient_boosting(seed: int, negative_rate: float = 1.0) -> ColumnsModel:
    """Fitted on every row. ``negative_rate`` < 1 fits it on every onset and a seeded share of
    the non-onsets weighted back to the whole data (the minimum leaf scaled, in rows of the
    whole data): measured by benchmarks/lightgbm_levers.py --model hist-gradient-boosting and
    not kept, as it lost skill on defense (README, "Cost of a fit")."""
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                           min_samples_leaf=sampled_leaf(100, negative_rate),
                                           l2_regularization=10.0, early_stopping=False,
                                           random_state=seed)
    # the climate is year-wide, a level no tree can carry to new years: as year and era, left out
    return ColumnsModel(pipeline=model, exclude=(*TIME_TREND, CLIMATE), negative_rate=negative_rate, seed=seed)
